"""conversation.sent_since_seen: messages sent since the citizen last wrote

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table('conversation') as batch:
        batch.add_column(sa.Column('sent_since_seen', sa.Integer(), nullable=False,
                                   server_default='0'))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table('conversation') as batch:
        batch.drop_column('sent_since_seen')
