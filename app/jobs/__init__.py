"""Background work: the supervisor, periodic jobs, catch-up, retention."""
