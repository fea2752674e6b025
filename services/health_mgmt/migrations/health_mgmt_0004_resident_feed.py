"""resident feed: when a subject's newest resident change was recorded

Revision ID: health_mgmt_0004
Revises: health_mgmt_0003
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa


revision = 'health_mgmt_0004'
down_revision = 'health_mgmt_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('subjects', sa.Column('last_change_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('subjects') as batch:
        batch.drop_column('last_change_at')
