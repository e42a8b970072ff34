"""outbox delivery at the channels' limits: kind, next attempt, expiry, outcome; unreachable

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text('sent_at IS NULL')


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table('notification') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=16), nullable=False,
                                   server_default='reply'))
        batch.add_column(sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                   nullable=True))
        batch.add_column(sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                   nullable=True))
        batch.add_column(sa.Column('outcome', sa.String(length=16), nullable=True))
    # Rows waiting today are due at once (a reply's lease has long run out).
    op.execute(sa.text('UPDATE notification SET next_attempt_at = created_at'))
    with op.batch_alter_table('notification') as batch:
        batch.alter_column('next_attempt_at', existing_type=sqlmodel.sql.sqltypes.UTCDateTime(),
                           nullable=False)
        batch.alter_column('kind', server_default=None, existing_type=sa.String(length=16))
    op.create_index('ix_notification_due', 'notification', ['next_attempt_at'],
                    postgresql_where=PENDING, sqlite_where=PENDING)
    op.create_table(
        'unreachable',
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('recipient', sa.String(length=128), nullable=False),
        sa.Column('since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('channel', 'recipient'),
    )


def downgrade() -> None:
    """Revert."""
    op.drop_table('unreachable')
    op.drop_index('ix_notification_due', table_name='notification')
    with op.batch_alter_table('notification') as batch:
        for column in ('outcome', 'expires_at', 'next_attempt_at', 'kind'):
            batch.drop_column(column)
