"""From Discord into Immich: the checks, the one upload path, channel ingest, "Save to Immich"."""
