"""Discord side: rendering sinks (bot, webhook), the bot and its /immich slash commands."""
