"""Studies: a declarative experiment over one or two axes, run as one ordinary job per cell.

`studies` holds the study as accepted; `study_cells` links each point of its grid to the job that runs
it. Jobs and runs are untouched: a study's status, progress and results are read from its cells' jobs.
Only new tables, so SQLite needs no batch rebuild.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '0006'
down_revision: Union[str, None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'studies',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('request', sa.JSON(), nullable=False),
        sa.Column('axes', sa.JSON(), nullable=False),
        sa.Column('methods', sa.JSON(), nullable=False),
        sa.Column('cancel_requested', sa.Boolean(), nullable=False),
        sa.Column('api_key_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name='fk_studies_api_key_id', ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_studies_created_at', 'studies', ['created_at'])
    op.create_table(
        'study_cells',
        sa.Column('study_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('job_id', sa.Integer(), nullable=False),
        sa.Column('task', sa.String(length=64), nullable=False),
        sa.Column('point', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['study_id'], ['studies.id'], name='fk_study_cells_study_id', ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name='fk_study_cells_job_id', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('study_id', 'position'),
    )
    op.create_index('ix_study_cells_job_id', 'study_cells', ['job_id'], unique=True)


def downgrade() -> None:
    op.drop_index('ix_study_cells_job_id', table_name='study_cells')
    op.drop_table('study_cells')
    op.drop_index('ix_studies_created_at', table_name='studies')
    op.drop_table('studies')
