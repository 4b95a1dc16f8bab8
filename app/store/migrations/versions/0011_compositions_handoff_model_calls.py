"""deferred compositions (debounce, answer model), handoff state, answer model calls

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 18:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handoff_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('waiting_since', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_conversations_waiting_since'), ['waiting_since'],
                              unique=False)
    op.create_table('compositions',
    sa.Column('conversation_sid', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('messages', sa.Integer(), nullable=False),
    sa.Column('message_sid', sa.String(length=64), nullable=False),
    sa.Column('author', sa.String(length=256), nullable=False),
    sa.Column('participant_sid', sa.String(length=64), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('due_at', sa.DateTime(), nullable=False),
    sa.Column('lease_until', sa.DateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('conversation_sid')
    )
    with op.batch_alter_table('compositions', schema=None) as batch_op:
        batch_op.create_index('ix_compositions_due', ['status', 'due_at'], unique=False)
    op.create_table('model_calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_sid', sa.String(length=64), nullable=False),
    sa.Column('message_sid', sa.String(length=64), nullable=False),
    sa.Column('called_at', sa.DateTime(), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('cited', sa.String(length=200), nullable=True),
    sa.Column('raw_output', sa.Text(), nullable=True),
    sa.Column('elapsed_ms', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('model_calls', schema=None) as batch_op:
        batch_op.create_index('ix_model_calls_conversation', ['conversation_sid', 'called_at'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_model_calls_called_at'), ['called_at'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_model_calls_message_sid'), ['message_sid'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('model_calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_calls_message_sid'))
        batch_op.drop_index(batch_op.f('ix_model_calls_called_at'))
        batch_op.drop_index('ix_model_calls_conversation')
    op.drop_table('model_calls')
    with op.batch_alter_table('compositions', schema=None) as batch_op:
        batch_op.drop_index('ix_compositions_due')
    op.drop_table('compositions')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversations_waiting_since'))
        batch_op.drop_column('waiting_since')
        batch_op.drop_column('handoff_at')
