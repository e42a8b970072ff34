"""citizens' feedback reports and satisfaction ratings

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    utc = sqlmodel.sql.sqltypes.UTCDateTime
    op.create_table(
        'feedback',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('commune_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('recipient', sa.String(length=128), nullable=False),
        sa.Column('lang', sa.String(length=8), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('receipt_code', sa.String(length=64), nullable=False),
        sa.Column('procedure_code', sa.String(length=16), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('assignee', sa.String(length=64), nullable=False),
        sa.Column('answer', sa.Text(), nullable=False),
        sa.Column('answered_by', sa.String(length=120), nullable=False),
        sa.Column('created_at', utc(), nullable=False),
        sa.Column('filed_at', utc(), nullable=True),
        sa.Column('due_at', utc(), nullable=True),
        sa.Column('answered_at', utc(), nullable=True),
        sa.Column('closed_at', utc(), nullable=True),
        sa.ForeignKeyConstraint(['commune_id'], ['commune.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_feedback_commune_id'), 'feedback', ['commune_id'])
    op.create_index('ix_feedback_commune_status_due', 'feedback',
                    ['commune_id', 'status', 'due_at'])
    op.create_index('ix_feedback_author', 'feedback',
                    ['commune_id', 'channel', 'recipient', 'status'])
    op.create_table(
        'rating',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('commune_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('recipient', sa.String(length=128), nullable=False),
        sa.Column('subject', sa.String(length=64), nullable=False),
        sa.Column('application_id', sa.Integer(), nullable=True),
        sa.Column('procedure_code', sa.String(length=16), nullable=False),
        sa.Column('officer', sa.String(length=120), nullable=False),
        sa.Column('score', sa.Integer(), nullable=True),
        sa.Column('comment', sa.Text(), nullable=False),
        sa.Column('asked_at', utc(), nullable=True),
        sa.Column('rated_at', utc(), nullable=True),
        sa.ForeignKeyConstraint(['commune_id'], ['commune.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('commune_id', 'channel', 'recipient', 'subject'),
    )
    op.create_index(op.f('ix_rating_commune_id'), 'rating', ['commune_id'])
    op.create_index('ix_rating_commune_rated', 'rating', ['commune_id', 'rated_at'])


def downgrade() -> None:
    """Revert."""
    op.drop_table('rating')
    op.drop_table('feedback')
