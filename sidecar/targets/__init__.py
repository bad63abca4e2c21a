"""Where notifications go: one module per target kind behind one interface (see registry)."""
