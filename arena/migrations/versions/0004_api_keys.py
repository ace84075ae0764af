"""API keys, and per job: who submitted it, what each run may cost, and its Idempotency-Key.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0004'
down_revision: Union[str, None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'api_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('max_concurrent_runs', sa.Integer(), nullable=True),
        sa.Column('max_queued_cpu_seconds', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
        sa.UniqueConstraint('key_hash'),
    )
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('api_key_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('run_cpu_seconds', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('idempotency_key', sa.String(length=300), nullable=True))
        batch.add_column(sa.Column('request_hash', sa.String(length=64), nullable=True))
        batch.create_foreign_key('fk_jobs_api_key_id', 'api_keys', ['api_key_id'], ['id'], ondelete='SET NULL')
        batch.create_index('ix_jobs_api_key_id_status', ['api_key_id', 'status'], unique=False)
        batch.create_index('ix_jobs_idempotency_key', ['idempotency_key'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_index('ix_jobs_idempotency_key')
        batch.drop_index('ix_jobs_api_key_id_status')
        batch.drop_constraint('fk_jobs_api_key_id', type_='foreignkey')
        batch.drop_column('request_hash')
        batch.drop_column('idempotency_key')
        batch.drop_column('run_cpu_seconds')
        batch.drop_column('api_key_id')
    op.drop_table('api_keys')
