"""conversation context: offered options, when the topic was set, last hand-over notice

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table('conversation') as batch:
        batch.add_column(sa.Column('options', sa.String(length=200), nullable=False,
                                   server_default=''))
        batch.add_column(sa.Column('topic_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('staff_notice_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                   nullable=True))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table('conversation') as batch:
        batch.drop_column('staff_notice_at')
        batch.drop_column('topic_at')
        batch.drop_column('options')
