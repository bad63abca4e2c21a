"""The rules (pure): compiled against Immich's people, matched against assets, across accounts."""
