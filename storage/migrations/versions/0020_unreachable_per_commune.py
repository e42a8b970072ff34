"""a recipient blocked one commune's bot, not every commune's: unreachable gets commune_id

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
FIRST_COMMUNE = '(SELECT min(id) FROM commune)'  # a deployment so far served one commune


def _table(name: str, *columns: sa.Column[object], key: tuple[str, ...], pk: str) -> None:
    op.create_table(
        name, *columns,
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('recipient', sa.String(length=128), nullable=False),
        sa.Column('since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(*key, name=pk))


def upgrade() -> None:
    """Apply: the marks so far are the first commune's (a new table: the key changes)."""
    _table('unreachable_new', sa.Column('commune_id', sa.Integer(), sa.ForeignKey('commune.id'),
                                        nullable=False),
           key=('commune_id', 'channel', 'recipient'), pk='pk_unreachable')
    op.execute(sa.text(
        'INSERT INTO unreachable_new (commune_id, channel, recipient, since) '
        f'SELECT {FIRST_COMMUNE}, channel, recipient, since FROM unreachable '
        'WHERE EXISTS (SELECT 1 FROM commune)'))
    op.drop_table('unreachable')
    op.rename_table('unreachable_new', 'unreachable')


def downgrade() -> None:
    """Revert: the first commune's marks are kept."""
    _table('unreachable_old', key=('channel', 'recipient'), pk='unreachable_pkey')
    op.execute(sa.text(
        'INSERT INTO unreachable_old (channel, recipient, since) SELECT channel, recipient, '
        f'since FROM unreachable WHERE commune_id = {FIRST_COMMUNE}'))
    op.drop_table('unreachable')
    op.rename_table('unreachable_old', 'unreachable')
