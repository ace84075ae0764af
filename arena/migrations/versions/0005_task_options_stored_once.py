"""Task options stored once: a run's spec references its task options (a car track of up to 10,000
points) in the new `task_options` table, keyed by the SHA-256 of their content, instead of copying them.

Upgrade moves the options of every run that holds some inline into the table (one row per distinct
content) and leaves {"ref": hash} in the run's spec; downgrade puts them back inline and drops the
table. `settings_hash` is untouched: it always was, and stays, the hash of the whole spec.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-13
"""

import hashlib
import json
from datetime import datetime, timezone
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0005'
down_revision: Union[str, None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

REF = 'ref'  # arena.store.queries.OPTIONS_REF
PAGE = 100  # runs read at a time: a run of an old database may hold a 200 KB track

runs = sa.table('runs', sa.column('id', sa.Integer()), sa.column('spec', sa.JSON()))
task_options = sa.table(
    'task_options', sa.column('hash', sa.String(64)), sa.column('options', sa.JSON()), sa.column('created_at', sa.DateTime(timezone=True)),
)


def content_hash(data) -> str:
    """arena.store.queries.content_hash, frozen here as this revision's definition."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(',', ':')).encode()).hexdigest()


def reference(options) -> str | None:
    if isinstance(options, dict) and len(options) == 1 and isinstance(options.get(REF), str):
        return options[REF]
    return None


def each_run(connection):
    """(id, spec) of every run, by id, a page at a time (updating a run does not disturb the paging)."""
    last = 0
    while True:
        page = connection.execute(sa.select(runs.c.id, runs.c.spec).where(runs.c.id > last).order_by(runs.c.id).limit(PAGE)).all()
        if not page:
            return
        yield from page
        last = page[-1].id


def upgrade() -> None:
    op.create_table(
        'task_options',
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('options', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('hash'),
    )
    connection = op.get_bind()
    stored: set[str] = set()
    now = datetime.now(timezone.utc)
    for run_id, spec in each_run(connection):
        options = (spec or {}).get('task_options')
        if not options or reference(options) is not None:
            continue
        digest = content_hash(options)
        if digest not in stored:
            connection.execute(sa.insert(task_options).values(hash=digest, options=options, created_at=now))
            stored.add(digest)
        connection.execute(sa.update(runs).where(runs.c.id == run_id).values(spec={**spec, 'task_options': {REF: digest}}))


def downgrade() -> None:
    connection = op.get_bind()
    loaded: dict[str, dict] = {}
    for run_id, spec in each_run(connection):
        digest = reference((spec or {}).get('task_options'))
        if digest is None:
            continue
        if digest not in loaded:
            loaded.clear()  # runs of one job are together: keep one track in memory, not all of them
            loaded[digest] = connection.execute(sa.select(task_options.c.options).where(task_options.c.hash == digest)).scalar_one()
        connection.execute(sa.update(runs).where(runs.c.id == run_id).values(spec={**spec, 'task_options': loaded[digest]}))
    op.drop_table('task_options')
