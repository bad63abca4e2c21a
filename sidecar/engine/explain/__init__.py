"""``explain ASSET``: why an asset was posted, waits, or will not be posted, in the words of
the functions that decide."""
