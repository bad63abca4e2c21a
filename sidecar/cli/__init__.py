"""The ``immich-sidecar`` command."""
