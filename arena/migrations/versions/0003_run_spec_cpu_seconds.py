"""Runs: `settings` (a whole run spec) renamed `spec`; the algorithm a run trained with; its CPU seconds.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0003'
down_revision: Union[str, None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.alter_column('settings', new_column_name='spec')
        batch.add_column(sa.Column('algorithm', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('cpu_seconds', sa.Float(), nullable=True))
        batch.add_column(sa.Column('cpu_seconds_to_solve', sa.Float(), nullable=True))
    # Runs stored before: backprop on car tasks ran PPO; every other method ran itself.
    op.execute("UPDATE runs SET algorithm = CASE WHEN method = 'backprop' AND task LIKE 'car-%' THEN 'ppo' ELSE method END")


def downgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('cpu_seconds_to_solve')
        batch.drop_column('cpu_seconds')
        batch.drop_column('algorithm')
        batch.alter_column('spec', new_column_name='settings')
