"""questions answered with low confidence, kept beside the declined ones

Revision ID: 0018
Revises: 0014
Create Date: 2026-12-06 14:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table('unanswered') as table:
        table.add_column(sa.Column('kind', sa.String(length=8), nullable=False,
                                   server_default='declined'))
        table.add_column(sa.Column('answered', sa.String(length=16), nullable=True))
        table.add_column(sa.Column('score', sa.Float(), nullable=True))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table('unanswered') as table:
        table.drop_column('score')
        table.drop_column('answered')
        table.drop_column('kind')
