"""From the outbox to the targets: batches, retries, quiet hours."""
