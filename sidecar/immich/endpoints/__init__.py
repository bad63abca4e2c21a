"""What the client asks Immich, one module per family of endpoints (mixed into ``ImmichClient``)."""
