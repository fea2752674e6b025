"""addressees and applied resident changes

Revision ID: integrated_address_0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa


revision = 'integrated_address_0001'
down_revision = None
branch_labels = ('integrated_address',)
depends_on = None


def upgrade() -> None:
    op.create_table('addressees',
    sa.Column('integrated_address_number', sa.String(length=15), nullable=False),
    sa.Column('my_number', sa.String(length=12), nullable=False),
    sa.Column('resident_code', sa.String(length=11), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=True),
    sa.Column('name_kana', sa.String(length=100), nullable=True),
    sa.Column('sex', sa.String(length=6), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('address', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('last_change_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("sex IS NULL OR sex IN ('male', 'female')", name=op.f('ck_addressees_sex')),
    sa.CheckConstraint("status IN ('resident', 'moved_out', 'deceased', 'non_resident')", name=op.f('ck_addressees_status')),
    sa.PrimaryKeyConstraint('integrated_address_number', name=op.f('pk_addressees')),
    sa.UniqueConstraint('my_number', name=op.f('uq_addressees_my_number')),
    sa.UniqueConstraint('resident_code', name=op.f('uq_addressees_resident_code'))
    )
    op.create_table('applied_changes',
    sa.Column('change_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('change_id', name=op.f('pk_applied_changes'))
    )


def downgrade() -> None:
    op.drop_table('applied_changes')
    op.drop_table('addressees')
