"""outcome kind, retry rounds, receipt back-fill checks, replies by conversation

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 16:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('processed_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome_kind', sa.String(length=32), nullable=True))

    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retry_from', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('receipts_checked_at', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_replies_conversation', ['conversation_sid', 'created_at'],
                              unique=False)
        # Partial: queueing a reply never touches it.
        unconfirmed = sa.text(
            "status = 'sent' AND delivery_status IS NULL AND receipts_checked_at IS NULL")
        batch_op.create_index('ix_replies_receipt_backfill', ['sent_at'], unique=False,
                              sqlite_where=unconfirmed, postgresql_where=unconfirmed)


def downgrade() -> None:
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.drop_index('ix_replies_receipt_backfill')
        batch_op.drop_index('ix_replies_conversation')
        batch_op.drop_column('receipts_checked_at')
        batch_op.drop_column('retry_from')

    with op.batch_alter_table('processed_events', schema=None) as batch_op:
        batch_op.drop_column('outcome_kind')
