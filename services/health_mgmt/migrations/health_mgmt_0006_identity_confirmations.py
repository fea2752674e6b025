"""identity confirmations: how each person proved who they were at enrolment (M01)

Revision ID: health_mgmt_0006
Revises: health_mgmt_0005
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa


revision = 'health_mgmt_0006'
down_revision = 'health_mgmt_0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('identity_confirmations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('subject_number', sa.String(length=15), nullable=False),
    sa.Column('method', sa.String(length=32), nullable=False),
    sa.Column('card_check_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('photo_id', sa.String(length=60), nullable=True),
    sa.Column('confirmed_by', sa.String(length=64), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_confirmations'))
    )
    with op.batch_alter_table('identity_confirmations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_confirmations_subject_number'), ['subject_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('identity_confirmations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_confirmations_subject_number'))
    op.drop_table('identity_confirmations')
