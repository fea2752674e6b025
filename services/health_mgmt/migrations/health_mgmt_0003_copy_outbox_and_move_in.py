"""copy outbox and move-in receipts

Revision ID: health_mgmt_0003
Revises: health_mgmt_0002
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = 'health_mgmt_0003'
down_revision = 'health_mgmt_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('copy_outbox',
    sa.Column('subject_number', sa.String(length=15), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('pending', sa.Boolean(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_version', sa.Integer(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('subject_number', name=op.f('pk_copy_outbox'))
    )
    with op.batch_alter_table('copy_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_copy_outbox_pending'), ['pending'], unique=False)

    op.create_table('move_in_receipts',
    sa.Column('query_id', sa.String(length=32), nullable=False),
    sa.Column('provider', sa.String(length=6), nullable=False),
    sa.Column('query_status', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('subject_number', sa.String(length=15), nullable=True),
    sa.Column('received', sa.Integer(), nullable=True),
    sa.Column('registered', sa.Integer(), nullable=True),
    sa.Column('skipped', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('noted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.CheckConstraint("outcome IN ('pending', 'registered', 'not_answered', 'unknown_subject', 'other_procedure')", name=op.f('ck_move_in_receipts_outcome')),
    sa.PrimaryKeyConstraint('query_id', name=op.f('pk_move_in_receipts'))
    )
    with op.batch_alter_table('move_in_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_move_in_receipts_outcome'), ['outcome'], unique=False)
        batch_op.create_index(batch_op.f('ix_move_in_receipts_subject_number'), ['subject_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('move_in_receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_move_in_receipts_subject_number'))
        batch_op.drop_index(batch_op.f('ix_move_in_receipts_outcome'))
    op.drop_table('move_in_receipts')
    with op.batch_alter_table('copy_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_copy_outbox_pending'))
    op.drop_table('copy_outbox')
