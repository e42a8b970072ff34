"""reminder scan: followers by an index-only lookup on PostgreSQL; the console overview's
figures from one covering index of applications

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns a follower is read with; SQLite has no INCLUDE and keeps the plain index.
FOLLOWER = ['id', 'commune_id', 'channel', 'recipient', 'lang', 'created_at']
OVERVIEW = ['commune_id', 'received_at', 'channel', 'status', 'due_at', 'completed_at',
            'updated_at']


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table('application') as batch_op:
        batch_op.create_index('ix_application_overview', OVERVIEW, unique=False)
        batch_op.drop_index('ix_application_commune_received')
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.drop_index('ix_subscription_application_id', table_name='subscription')
    op.create_index('ix_subscription_application_id', 'subscription', ['application_id'],
                    postgresql_include=FOLLOWER)


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table('application') as batch_op:
        batch_op.create_index('ix_application_commune_received', ['commune_id', 'received_at'],
                              unique=False)
        batch_op.drop_index('ix_application_overview')
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.drop_index('ix_subscription_application_id', table_name='subscription')
    op.create_index('ix_subscription_application_id', 'subscription', ['application_id'])
