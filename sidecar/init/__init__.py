"""``immich-sidecar init``: a first config.yaml written from what the user's own Immich has."""
