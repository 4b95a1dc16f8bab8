"""the FAQ: matches recorded per message (outcome, entry, candidates, text, marked wrong),
and the ids a clarification offered per conversation

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 18:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('faq_matches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_sid', sa.String(length=64), nullable=False),
    sa.Column('conversation_sid', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('faq_id', sa.String(length=64), nullable=True),
    sa.Column('candidates', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('wrong_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_sid')
    )
    with op.batch_alter_table('faq_matches', schema=None) as batch_op:
        batch_op.create_index('ix_faq_matches_created', ['created_at', 'outcome'], unique=False)
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('faq_offered', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_column('faq_offered')
    with op.batch_alter_table('faq_matches', schema=None) as batch_op:
        batch_op.drop_index('ix_faq_matches_created')
    op.drop_table('faq_matches')
