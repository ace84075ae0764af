"""The ledger: settings from the environment, the database engine, the tables and every query.

The API, the workers, `arena keys` and the migrations all use it; it imports nothing above it.
"""
