"""resident register: residents and their changes

Revision ID: resident_registry_0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa


revision = 'resident_registry_0001'
down_revision = None
branch_labels = ('resident_registry',)
depends_on = None


def upgrade() -> None:
    op.create_table('residents',
    sa.Column('resident_code', sa.String(length=11), nullable=False),
    sa.Column('my_number', sa.String(length=12), nullable=False),
    sa.Column('family_name', sa.String(length=100), nullable=False),
    sa.Column('given_name', sa.String(length=100), nullable=False),
    sa.Column('family_name_kana', sa.String(length=100), nullable=False),
    sa.Column('given_name_kana', sa.String(length=100), nullable=False),
    sa.Column('sex', sa.String(length=6), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('town', sa.String(length=100), nullable=False),
    sa.Column('household_id', sa.String(length=32), nullable=False),
    sa.Column('relation', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.CheckConstraint("sex IN ('male', 'female')", name=op.f('ck_residents_sex')),
    sa.CheckConstraint("status IN ('resident', 'moved_out', 'deceased')", name=op.f('ck_residents_status')),
    sa.PrimaryKeyConstraint('resident_code', name=op.f('pk_residents')),
    sa.UniqueConstraint('my_number', name=op.f('uq_residents_my_number'))
    )
    op.create_table('resident_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('change_id', sa.String(length=64), nullable=False),
    sa.Column('resident_code', sa.String(length=11), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('effective_date', sa.Date(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=128), nullable=False),
    sa.Column('record', sa.Text(), nullable=False),
    sa.CheckConstraint("kind IN ('birth', 'move_in', 'special_move_in', 'move_out', 'address_change', 'death', 'correction')", name=op.f('ck_resident_changes_kind')),
    sa.ForeignKeyConstraint(['resident_code'], ['residents.resident_code'], name=op.f('fk_resident_changes_resident_code_residents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resident_changes')),
    sa.UniqueConstraint('change_id', name=op.f('uq_resident_changes_change_id'))
    )
    with op.batch_alter_table('resident_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resident_changes_resident_code'), ['resident_code'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('resident_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resident_changes_resident_code'))

    op.drop_table('resident_changes')
    op.drop_table('residents')
