"""supplement deadline on applications; indexes for the reminder scan and the staff digest

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table('application') as batch:
        batch.add_column(sa.Column('supplement_due_at', sqlmodel.sql.sqltypes.UTCDateTime(),
                                   nullable=True))
    op.create_index('ix_application_status_due', 'application',
                    ['commune_id', 'status', 'due_at'])
    op.create_index('ix_application_status_completed', 'application',
                    ['commune_id', 'status', 'completed_at'])
    dated = sa.text('supplement_due_at IS NOT NULL')
    op.create_index('ix_application_supplement_due', 'application',
                    ['commune_id', 'supplement_due_at'],
                    postgresql_where=dated, sqlite_where=dated)


def downgrade() -> None:
    """Revert."""
    op.drop_index('ix_application_supplement_due', table_name='application')
    op.drop_index('ix_application_status_completed', table_name='application')
    op.drop_index('ix_application_status_due', table_name='application')
    with op.batch_alter_table('application') as batch:
        batch.drop_column('supplement_due_at')
