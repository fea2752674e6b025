"""identity copies of every city

Revision ID: juki_prefecture_0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa


revision = 'juki_prefecture_0001'
down_revision = None
branch_labels = ('juki_prefecture',)
depends_on = None


def upgrade() -> None:
    op.create_table('identity_copies',
    sa.Column('city', sa.String(length=6), nullable=False),
    sa.Column('resident_code', sa.String(length=11), nullable=False),
    sa.Column('my_number', sa.String(length=12), nullable=False),
    sa.Column('family_name', sa.String(length=100), nullable=False),
    sa.Column('given_name', sa.String(length=100), nullable=False),
    sa.Column('family_name_kana', sa.String(length=100), nullable=False),
    sa.Column('given_name_kana', sa.String(length=100), nullable=False),
    sa.Column('sex', sa.String(length=6), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('city', 'resident_code', name=op.f('pk_identity_copies'))
    )
    with op.batch_alter_table('identity_copies', schema=None) as batch_op:
        batch_op.create_index('ix_identity_copies_birth', ['birth_date', 'sex'], unique=False)
        batch_op.create_index('ix_identity_copies_code', ['resident_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_identity_copies_my_number'), ['my_number'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('identity_copies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_copies_my_number'))
        batch_op.drop_index('ix_identity_copies_code')
        batch_op.drop_index('ix_identity_copies_birth')

    op.drop_table('identity_copies')
