"""receipt history, kept receipt errors, hourly counts, timeline and covering indexes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('receipt_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('receipt_sid', sa.String(length=64), nullable=False),
    sa.Column('message_sid', sa.String(length=64), nullable=False),
    sa.Column('conversation_sid', sa.String(length=64), nullable=False),
    sa.Column('participant_sid', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=True),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('receipt_events', schema=None) as batch_op:
        batch_op.create_index('ix_receipt_events_message', ['message_sid', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_receipt_events_received_at'), ['received_at'],
                              unique=False)
    op.create_table('hourly_counts',
    sa.Column('hour', sa.DateTime(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('hour', 'name')
    )
    with op.batch_alter_table('delivery_receipts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error_status', sa.String(length=16), nullable=True))
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery_error_code', sa.Integer(), nullable=True))
        batch_op.create_index('ix_replies_sent', ['sent_at', 'created_at'], unique=False)
        # Wider than the index it replaces (same count of indexes per write).
        batch_op.create_index('ix_replies_created', ['created_at', 'status', 'delivery_status'],
                              unique=False)
        batch_op.drop_index('ix_replies_created_at')
    with op.batch_alter_table('processed_events', schema=None) as batch_op:
        batch_op.create_index('ix_processed_events_conversation',
                              ['conversation_sid', 'received_at'], unique=False)
        batch_op.create_index('ix_processed_events_received',
                              ['received_at', 'outcome_kind', 'reason'], unique=False)
        batch_op.drop_index('ix_processed_events_received_at')


def downgrade() -> None:
    with op.batch_alter_table('processed_events', schema=None) as batch_op:
        batch_op.create_index('ix_processed_events_received_at', ['received_at'], unique=False)
        batch_op.drop_index('ix_processed_events_received')
        batch_op.drop_index('ix_processed_events_conversation')
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.create_index('ix_replies_created_at', ['created_at'], unique=False)
        batch_op.drop_index('ix_replies_created')
        batch_op.drop_index('ix_replies_sent')
        batch_op.drop_column('delivery_error_code')
    with op.batch_alter_table('delivery_receipts', schema=None) as batch_op:
        batch_op.drop_column('error_status')
    op.drop_table('hourly_counts')
    with op.batch_alter_table('receipt_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_receipt_events_received_at'))
        batch_op.drop_index('ix_receipt_events_message')
    op.drop_table('receipt_events')
