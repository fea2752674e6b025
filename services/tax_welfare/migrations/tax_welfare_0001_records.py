"""taxpayers, local-tax records, public-assistance records and the fiscal years assessed

Revision ID: tax_welfare_0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa


revision = 'tax_welfare_0001'
down_revision = None
branch_labels = ('tax_welfare',)
depends_on = None


def upgrade() -> None:
    op.create_table('taxpayers',
    sa.Column('resident_code', sa.String(length=11), nullable=False),
    sa.Column('integrated_address_number', sa.String(length=15), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=True),
    sa.Column('household_id', sa.String(length=32), nullable=True),
    sa.Column('resident_since', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('last_change_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IS NULL OR status IN ('resident', 'moved_out', 'deceased')", name=op.f('ck_taxpayers_status')),
    sa.PrimaryKeyConstraint('resident_code', name=op.f('pk_taxpayers')),
    sa.UniqueConstraint('integrated_address_number', name=op.f('uq_taxpayers_integrated_address_number'))
    )
    op.create_table('local_tax_records',
    sa.Column('integrated_address_number', sa.String(length=15), nullable=False),
    sa.Column('fiscal_year', sa.Integer(), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('origin', sa.String(length=8), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("origin IN ('seeded', 'loaded')", name=op.f('ck_local_tax_records_origin')),
    sa.CheckConstraint("status IN ('taxed', 'tax_exempt')", name=op.f('ck_local_tax_records_status')),
    sa.PrimaryKeyConstraint('integrated_address_number', 'fiscal_year', name=op.f('pk_local_tax_records'))
    )
    op.create_table('assistance_records',
    sa.Column('integrated_address_number', sa.String(length=15), nullable=False),
    sa.Column('fiscal_year', sa.Integer(), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('origin', sa.String(length=8), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("origin IN ('seeded', 'loaded')", name=op.f('ck_assistance_records_origin')),
    sa.PrimaryKeyConstraint('integrated_address_number', 'fiscal_year', name=op.f('pk_assistance_records'))
    )
    op.create_table('years_assessed',
    sa.Column('fiscal_year', sa.Integer(), nullable=False),
    sa.Column('people', sa.Integer(), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('fiscal_year', name=op.f('pk_years_assessed'))
    )


def downgrade() -> None:
    op.drop_table('years_assessed')
    op.drop_table('assistance_records')
    op.drop_table('local_tax_records')
    op.drop_table('taxpayers')
