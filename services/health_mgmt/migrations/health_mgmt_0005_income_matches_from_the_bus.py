"""income matches from the tax and welfare systems on the bus

Revision ID: health_mgmt_0005
Revises: health_mgmt_0004
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa


revision = 'health_mgmt_0005'
down_revision = 'health_mgmt_0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('income_matches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=8), server_default='file', nullable=False))
        batch_op.add_column(sa.Column('person_number', sa.String(length=15), nullable=True))
        batch_op.create_index(batch_op.f('ix_income_matches_person_number'), ['person_number'], unique=False)
        batch_op.create_check_constraint(batch_op.f('ck_income_matches_channel'), "channel IN ('file', 'bus')")


def downgrade() -> None:
    with op.batch_alter_table('income_matches', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_income_matches_channel'), type_='check')
        batch_op.drop_index(batch_op.f('ix_income_matches_person_number'))
        batch_op.drop_column('person_number')
        batch_op.drop_column('channel')
