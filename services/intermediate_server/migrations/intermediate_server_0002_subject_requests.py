"""a person's requests: disclosure, correction, suspension of use (M34)

Revision ID: intermediate_server_0002
Revises: intermediate_server_0001
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa


revision = 'intermediate_server_0002'
down_revision = 'intermediate_server_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('subject_requests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tenant', sa.String(length=6), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('integrated_address_number', sa.String(length=15), nullable=False),
    sa.Column('details', sa.String(length=2000), nullable=False),
    sa.Column('received_by', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_reason', sa.String(length=500), nullable=True),
    sa.Column('lifted_by', sa.String(length=64), nullable=True),
    sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subject_requests'))
    )
    op.create_index('ix_subject_requests_person', 'subject_requests', ['tenant', 'integrated_address_number', 'kind', 'state'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_subject_requests_person', table_name='subject_requests')
    op.drop_table('subject_requests')
