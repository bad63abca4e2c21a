"""The Immich API client and its domain values."""
