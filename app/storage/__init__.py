"""Storage: everything that knows a database.

- `schema`: the declarative base, naming convention and column types the modules' tables use.
- `port`: statements compiled once per dialect (`Query`), and the `Database` / `Transaction`
  protocols; the bus and the modules depend on this, never on a driver.
- `sqlite`, `postgres`: the drivers commands run on; `tracing`: a span per statement.
- `connect`: `open_database(url)`, the driver for a URL.
- `engine`: the SQLAlchemy engine for migrations (Alembic) and start-up seeding.
"""
