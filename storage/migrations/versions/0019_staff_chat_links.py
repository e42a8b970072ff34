"""a one-time code that links a staff member's Telegram account to their console account

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 20:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table('staffaccount') as table:
        table.add_column(sa.Column('link_code_hash', sa.String(length=64), nullable=True))
        table.add_column(sa.Column('link_code_expires_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                   nullable=True))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table('staffaccount') as table:
        table.drop_column('link_code_expires_at')
        table.drop_column('link_code_hash')
