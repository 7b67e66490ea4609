"""Channels: the official-account webhook, the WeCom callback, the outbox sender."""
