"""Immich push: the endpoint Immich 3.x workflows POST to, what a push triggers, and the
``push setup`` / ``push status`` commands."""
