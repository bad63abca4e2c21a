"""Deciding what to send, once: sources (uploads, albums, posts), rules, store, dispatch, reload."""
