"""announcement subscribers (with their consent) and staff broadcasts

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        'announcementsubscriber',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('commune_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('recipient', sa.String(length=128), nullable=False),
        sa.Column('lang', sa.String(length=8), nullable=False),
        sa.Column('hamlet', sa.String(length=64), nullable=False),
        sa.Column('consented_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('withdrawn_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['commune_id'], ['commune.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('commune_id', 'channel', 'recipient'),
    )
    op.create_index(op.f('ix_announcementsubscriber_commune_id'), 'announcementsubscriber',
                    ['commune_id'])
    op.create_table(
        'broadcast',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('commune_id', sa.Integer(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('link', sa.String(length=500), nullable=False),
        sa.Column('audience', sa.String(length=16), nullable=False),
        sa.Column('audience_value', sa.String(length=200), nullable=False),
        sa.Column('created_by', sa.String(length=120), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('send_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('queued_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('recipients', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['commune_id'], ['commune.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_broadcast_commune_id'), 'broadcast', ['commune_id'])
    op.create_index('ix_broadcast_due', 'broadcast', ['status', 'send_at'])


def downgrade() -> None:
    """Revert."""
    op.drop_table('broadcast')
    op.drop_table('announcementsubscriber')
