"""community-bot: the front door of a residential community on WeChat."""
