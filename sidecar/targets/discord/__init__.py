"""The two Discord target kinds (bot channel, webhook), the DMs, and their shared rendering."""
