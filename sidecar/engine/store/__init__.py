"""The state file (SQLite): one module per family of tables, the schema and its migrations."""
