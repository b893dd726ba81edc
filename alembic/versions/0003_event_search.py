"""event search index (SQLite): a trigram full-text index over titles and descriptions

A substring search (`search=` on GET /events) scans every event of the organization; with this
index it reads only the events that contain the text (SQLite's FTS5 trigram tokenizer:
case-insensitive substring matching for three characters or more).

- `events_search`: FTS5, trigram, over (title, description); its rowid is a stable integer
  from `events_search_ids` (an events_events rowid would change on VACUUM: the table's key is
  text);
- triggers keep both in step with events_events on insert, delete and title/description change.

PostgreSQL: nothing here (ILIKE scans; pg_trgm would be its counterpart).

A later migration that rebuilds events_events in batch mode (copy, drop, rename) drops these
triggers with the old table: it must create them again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 01:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_UP = (
    """CREATE TABLE events_search_ids (
        search_rowid INTEGER PRIMARY KEY,
        event_id VARCHAR(36) NOT NULL UNIQUE
    )""",
    "CREATE VIRTUAL TABLE events_search USING fts5(title, description, tokenize = 'trigram')",
    """CREATE TRIGGER events_search_insert AFTER INSERT ON events_events BEGIN
        INSERT INTO events_search_ids (event_id) VALUES (new.id);
        INSERT INTO events_search (rowid, title, description)
            VALUES (last_insert_rowid(), new.title, new.description);
    END""",
    """CREATE TRIGGER events_search_delete AFTER DELETE ON events_events BEGIN
        DELETE FROM events_search WHERE rowid =
            (SELECT search_rowid FROM events_search_ids WHERE event_id = old.id);
        DELETE FROM events_search_ids WHERE event_id = old.id;
    END""",
    """CREATE TRIGGER events_search_update AFTER UPDATE OF title, description ON events_events
    BEGIN
        UPDATE events_search SET title = new.title, description = new.description WHERE rowid =
            (SELECT search_rowid FROM events_search_ids WHERE event_id = new.id);
    END""",
    "INSERT INTO events_search_ids (event_id) SELECT id FROM events_events ORDER BY rowid",
    """INSERT INTO events_search (rowid, title, description)
        SELECT i.search_rowid, e.title, e.description
        FROM events_search_ids AS i JOIN events_events AS e ON e.id = i.event_id""",
)

SQLITE_DOWN = (
    "DROP TRIGGER events_search_update",
    "DROP TRIGGER events_search_delete",
    "DROP TRIGGER events_search_insert",
    "DROP TABLE events_search",
    "DROP TABLE events_search_ids",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in SQLITE_DOWN:
        op.execute(statement)
