"""knowledge changes made in the console (aliases, FAQ entries), versioned

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    utc = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        'knowledgechange',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('commune_id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('phrasing', sa.Text(), nullable=False),
        sa.Column('target', sa.String(length=80), nullable=False),
        sa.Column('entry', sa.Text(), nullable=False),
        sa.Column('unanswered_id', sa.Integer(), nullable=True),
        sa.Column('created_by', sa.String(length=120), nullable=False),
        sa.Column('created_at', utc(), nullable=False),
        sa.Column('undone_at', utc(), nullable=True),
        sa.Column('undone_by', sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(['commune_id'], ['commune.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_knowledgechange_commune_id'), 'knowledgechange', ['commune_id'])
    op.create_index('ix_knowledgechange_commune_version', 'knowledgechange',
                    ['commune_id', 'version'])
    op.create_table(
        'knowledgeversion',
        sa.Column('commune_id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['commune_id'], ['commune.id']),
        sa.PrimaryKeyConstraint('commune_id'),
    )


def downgrade() -> None:
    """Revert."""
    op.drop_table('knowledgeversion')
    op.drop_table('knowledgechange')
