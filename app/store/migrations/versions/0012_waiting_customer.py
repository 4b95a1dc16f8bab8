"""who a handed-off conversation's wait is for (their address and participant)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 12:35:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('waiting_address', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('waiting_participant', sa.String(length=64),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_column('waiting_participant')
        batch_op.drop_column('waiting_address')
