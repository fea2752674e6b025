"""fee determination

Revision ID: health_mgmt_0002
Revises: health_mgmt_0001
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa


revision = 'health_mgmt_0002'
down_revision = 'health_mgmt_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('income_matches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('fiscal_year', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('file_digest', sa.String(length=64), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('subject_number', sa.String(length=15), nullable=True),
    sa.Column('status', sa.String(length=24), nullable=True),
    sa.Column('outcome', sa.String(length=24), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('matched_by', sa.String(length=128), nullable=False),
    sa.Column('matched_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("source IN ('tax', 'welfare')", name=op.f('ck_income_matches_source')),
    sa.ForeignKeyConstraint(['subject_number'], ['subjects.integrated_address_number'], name=op.f('fk_income_matches_subject_number_subjects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_income_matches')),
    sa.UniqueConstraint('file_digest', 'line', name='uq_income_matches_file_line')
    )
    with op.batch_alter_table('income_matches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_income_matches_fiscal_year'), ['fiscal_year'], unique=False)
        batch_op.create_index(batch_op.f('ix_income_matches_subject_number'), ['subject_number'], unique=False)

    op.create_table('fee_determinations',
    sa.Column('subject_number', sa.String(length=15), nullable=False),
    sa.Column('fiscal_year', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=24), nullable=False),
    sa.Column('exempt', sa.Boolean(), nullable=False),
    sa.Column('basis_match_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("category IN ('public_assistance', 'tax_exempt', 'taxed', 'unknown')", name=op.f('ck_fee_determinations_category')),
    sa.ForeignKeyConstraint(['basis_match_id'], ['income_matches.id'], name=op.f('fk_fee_determinations_basis_match_id_income_matches')),
    sa.ForeignKeyConstraint(['subject_number'], ['subjects.integrated_address_number'], name=op.f('fk_fee_determinations_subject_number_subjects')),
    sa.PrimaryKeyConstraint('subject_number', 'fiscal_year', name=op.f('pk_fee_determinations'))
    )


def downgrade() -> None:
    op.drop_table('fee_determinations')
    with op.batch_alter_table('income_matches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_income_matches_subject_number'))
        batch_op.drop_index(batch_op.f('ix_income_matches_fiscal_year'))

    op.drop_table('income_matches')
