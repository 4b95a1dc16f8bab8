"""Persistence: the database, group commit, models, migrations."""
