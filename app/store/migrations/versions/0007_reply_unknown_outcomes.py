"""replies.unsure_at: when a create whose outcome is unknown may have begun

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 15:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unsure_at', sa.DateTime(), nullable=True))
    # Retries queued by the code before this one did not say whether their attempt's
    # outcome was unknown: count them as unknown, from their due time (later than the
    # attempt began, so the settle time is waited in full). A lease being held now
    # needs nothing: taking it over marks the holder's attempt unknown anyway.
    op.execute("UPDATE replies SET unsure_at = next_attempt_at "
               "WHERE status = 'queued' AND attempts > retry_from")


def downgrade() -> None:
    with op.batch_alter_table('replies', schema=None) as batch_op:
        batch_op.drop_column('unsure_at')
