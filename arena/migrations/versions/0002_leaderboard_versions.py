"""Leaderboard versions: bumped when a run of the task finishes, so the API can cache leaderboards exactly.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0002'
down_revision: Union[str, None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('leaderboard_versions',
    sa.Column('task', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('task')
    )


def downgrade() -> None:
    op.drop_table('leaderboard_versions')
