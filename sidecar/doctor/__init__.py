"""``immich-sidecar doctor``: checks a whole setup against the live Immich and Discord."""
