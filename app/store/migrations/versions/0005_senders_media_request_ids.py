"""sender registry (shared concurrency), media uploads, replies' media and request id

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 18:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('senders',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('share', sa.Integer(), nullable=False),
    sa.Column('concurrency', sa.Integer(), nullable=False),
    sa.Column('in_flight', sa.Integer(), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('senders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_senders_heartbeat_at'), ['heartbeat_at'],
                              unique=False)
    op.create_table('media_uploads',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('service_sid', sa.String(length=64), nullable=False),
    sa.Column('media_sid', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=512), nullable=False),
    sa.Column('content_type', sa.String(length=128), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('media', sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column('request_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.drop_column('request_id')
        batch_op.drop_column('media')
    op.drop_table('media_uploads')
    with op.batch_alter_table('senders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_senders_heartbeat_at'))
    op.drop_table('senders')
