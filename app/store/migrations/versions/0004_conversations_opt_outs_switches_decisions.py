"""conversation state, opt-outs, runtime switches, decisions, richer replies

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 16:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('conversations',
    sa.Column('sid', sa.String(length=64), nullable=False),
    sa.Column('inbound_count', sa.Integer(), nullable=False),
    sa.Column('last_inbound_at', sa.DateTime(), nullable=True),
    sa.Column('last_agent_at', sa.DateTime(), nullable=True),
    sa.Column('last_reply_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('sid')
    )
    op.create_table('opt_outs',
    sa.Column('address', sa.String(length=256), nullable=False),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('conversation_sid', sa.String(length=64), nullable=True),
    sa.Column('opted_out_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('address')
    )
    op.create_table('switches',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('processed_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('rule', sa.String(length=64), nullable=True))

    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.alter_column('body', existing_type=sa.Text(), nullable=True)
        batch_op.add_column(sa.Column('content_sid', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('content_variables', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('customer', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('participant_sid', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('channel', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('message_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('replies', schema=None) as batch_op:
        for column in ('message_at', 'channel', 'participant_sid', 'customer',
                       'content_variables', 'content_sid'):
            batch_op.drop_column(column)
        batch_op.alter_column('body', existing_type=sa.Text(), nullable=False)

    with op.batch_alter_table('processed_events', schema=None) as batch_op:
        batch_op.drop_column('rule')
        batch_op.drop_column('reason')

    op.drop_table('switches')
    op.drop_table('opt_outs')
    op.drop_table('conversations')
