"""The simulator: stand-ins for the WeChat and WeCom APIs, and a resident chat page."""
