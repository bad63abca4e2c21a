"""The config model, its loader and the YAML reader; the schema is sidecar/config.schema.json."""
