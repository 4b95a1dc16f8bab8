"""what the operator reads: a message's author, channel, text and media types; replies
sent by a dry-run server; the indexes of the dashboard's search and of text pruning

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 18:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('processed_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('author', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('channel', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('body', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('media_types', sa.String(length=256), nullable=True))
        batch_op.create_index('ix_processed_events_author', ['author', 'received_at'],
                              unique=False, sqlite_where=sa.text('author IS NOT NULL'),
                              postgresql_where=sa.text('author IS NOT NULL'))
        batch_op.create_index('ix_processed_events_text', ['received_at'], unique=False,
                              sqlite_where=sa.text('body IS NOT NULL'),
                              postgresql_where=sa.text('body IS NOT NULL'))
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dry_run', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        # A period's outcomes (dry run included) still from the index alone.
        batch_op.drop_index('ix_replies_created')
        batch_op.create_index('ix_replies_created',
                              ['created_at', 'status', 'delivery_status', 'dry_run'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.drop_index('ix_replies_created')
        batch_op.create_index('ix_replies_created', ['created_at', 'status', 'delivery_status'],
                              unique=False)
        batch_op.drop_column('dry_run')
    with op.batch_alter_table('processed_events', schema=None) as batch_op:
        batch_op.drop_index('ix_processed_events_text')
        batch_op.drop_index('ix_processed_events_author')
        batch_op.drop_column('media_types')
        batch_op.drop_column('body')
        batch_op.drop_column('channel')
        batch_op.drop_column('author')
