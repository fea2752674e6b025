"""the digest of each permit as signed, which honouring it compares

Revision ID: provision_network_0002
Revises: provision_network_0001
Create Date: 2026-11-28
"""

from alembic import op
import sqlalchemy as sa


revision = 'provision_network_0002'
down_revision = 'provision_network_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A permit issued before this has no digest and is refused: permits live for minutes.
    with op.batch_alter_table('permits') as batch:
        batch.add_column(sa.Column('digest', sa.String(length=64), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('permits') as batch:
        batch.drop_column('digest')
