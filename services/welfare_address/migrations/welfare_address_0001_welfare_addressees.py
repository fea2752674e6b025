"""welfare addressees (residents and non-residents) and applied resident changes

Revision ID: welfare_address_0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa


revision = 'welfare_address_0001'
down_revision = None
branch_labels = ('welfare_address',)
depends_on = None


def upgrade() -> None:
    op.create_table('applied_changes',
    sa.Column('change_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('change_id', name=op.f('pk_applied_changes'))
    )
    op.create_table('welfare_addressees',
    sa.Column('welfare_address_number', sa.String(length=10), nullable=False),
    sa.Column('integrated_address_number', sa.String(length=15), nullable=True),
    sa.Column('my_number', sa.String(length=12), nullable=True),
    sa.Column('resident_code', sa.String(length=11), nullable=True),
    sa.Column('registration_key', sa.String(length=64), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_kana', sa.String(length=100), nullable=False),
    sa.Column('sex', sa.String(length=6), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('last_change_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("sex IN ('male', 'female')", name=op.f('ck_welfare_addressees_sex')),
    sa.CheckConstraint("status IN ('resident', 'moved_out', 'deceased', 'non_resident')", name=op.f('ck_welfare_addressees_status')),
    sa.PrimaryKeyConstraint('welfare_address_number', name=op.f('pk_welfare_addressees')),
    sa.UniqueConstraint('integrated_address_number', name=op.f('uq_welfare_addressees_integrated_address_number')),
    sa.UniqueConstraint('my_number', name=op.f('uq_welfare_addressees_my_number')),
    sa.UniqueConstraint('registration_key', name=op.f('uq_welfare_addressees_registration_key')),
    sa.UniqueConstraint('resident_code', name=op.f('uq_welfare_addressees_resident_code'))
    )


def downgrade() -> None:
    op.drop_table('welfare_addressees')
    op.drop_table('applied_changes')
