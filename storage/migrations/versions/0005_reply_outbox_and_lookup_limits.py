"""replies kept in the outbox with their buttons; lookups audited with client and refusal;
messages relayed to staff counted per conversation

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table('conversation') as batch:
        batch.add_column(sa.Column('relayed', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('relay_window_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                   nullable=True))
    with op.batch_alter_table('notification') as batch:
        batch.add_column(sa.Column('buttons', sa.Text(), nullable=True))
    with op.batch_alter_table('lookupattempt') as batch:
        batch.add_column(sa.Column('client_key', sa.String(length=64), nullable=False,
                                   server_default=''))
        batch.add_column(sa.Column('refused', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('weak', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    failed_weakly = sa.text('weak AND NOT success AND NOT refused')
    op.create_index('ix_lookup_weak_failure', 'lookupattempt', ['commune_id', 'at'],
                    postgresql_where=failed_weakly, sqlite_where=failed_weakly)


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table('conversation') as batch:
        batch.drop_column('relay_window_at')
        batch.drop_column('relayed')
    op.drop_index('ix_lookup_weak_failure', table_name='lookupattempt')
    with op.batch_alter_table('lookupattempt') as batch:
        batch.drop_column('weak')
        batch.drop_column('refused')
        batch.drop_column('client_key')
    with op.batch_alter_table('notification') as batch:
        batch.drop_column('buttons')
