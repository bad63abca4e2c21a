"""Source: scheduled posts (memories, birthdays, digests): the pure plan, the cron runner."""
