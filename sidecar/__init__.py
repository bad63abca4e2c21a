"""immich-discord-sidecar: posts new Immich photos and videos that match watch rules to Discord."""

__version__ = "0.1.0"
