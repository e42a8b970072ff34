"""broadcast images; outbox rows carry their broadcast id and image

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table('broadcast') as batch:
        batch.add_column(sa.Column('image', sa.String(length=2048), nullable=False,
                                   server_default=''))
    with op.batch_alter_table('notification') as batch:
        batch.add_column(sa.Column('broadcast_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('image', sa.String(length=2048), nullable=True))
        batch.create_foreign_key('fk_notification_broadcast_id', 'broadcast',
                                 ['broadcast_id'], ['id'])
    op.create_index(op.f('ix_notification_broadcast_id'), 'notification', ['broadcast_id'])
    # Rows queued before this revision are known by their key, "broadcast:<id>:…".
    op.execute(sa.text(
        "UPDATE notification SET broadcast_id = (SELECT broadcast.id FROM broadcast WHERE "
        "notification.idempotency_key LIKE 'broadcast:' || broadcast.id || ':%') "
        "WHERE kind = 'broadcast'"))


def downgrade() -> None:
    """Revert."""
    op.drop_index(op.f('ix_notification_broadcast_id'), table_name='notification')
    with op.batch_alter_table('notification') as batch:
        batch.drop_constraint('fk_notification_broadcast_id', type_='foreignkey')
        batch.drop_column('image')
        batch.drop_column('broadcast_id')
    with op.batch_alter_table('broadcast') as batch:
        batch.drop_column('image')
