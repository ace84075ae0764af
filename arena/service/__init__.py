"""The HTTP service: settings, database (tables, migrations, queries), statistics and the FastAPI app."""
