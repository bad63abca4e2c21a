"""Source: scheduled posts (memories, birthdays, digests): the pure plan, its planner
(what a run asks Immich), the cron scheduler and the dry run."""
