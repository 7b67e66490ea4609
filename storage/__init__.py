"""Persistence: models, database engine, migrations and the dialog/state store."""
