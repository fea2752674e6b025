"""identity information, forwarding, search and check records

Revision ID: juki_cs_0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa


revision = 'juki_cs_0001'
down_revision = None
branch_labels = ('juki_cs',)
depends_on = None


def upgrade() -> None:
    op.create_table('card_verifications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('card_serial', sa.String(length=32), nullable=False),
    sa.Column('resident_code', sa.String(length=11), nullable=True),
    sa.Column('verified', sa.Boolean(), nullable=False),
    sa.Column('reasons', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_card_verifications'))
    )
    with op.batch_alter_table('card_verifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_card_verifications_at'), ['at'], unique=False)

    op.create_table('consistency_checks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('report', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consistency_checks'))
    )
    op.create_table('identity_info',
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
    sa.Column('change_id', sa.String(length=64), nullable=False),
    sa.Column('change_kind', sa.String(length=16), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.CheckConstraint("sex IN ('male', 'female')", name=op.f('ck_identity_info_sex')),
    sa.CheckConstraint("status IN ('resident', 'moved_out', 'deceased')", name=op.f('ck_identity_info_status')),
    sa.PrimaryKeyConstraint('resident_code', name=op.f('pk_identity_info')),
    sa.UniqueConstraint('my_number', name=op.f('uq_identity_info_my_number'))
    )
    op.create_table('prefecture_forwarding',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('resident_code', sa.String(length=11), nullable=False),
    sa.Column('record', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('forwarded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prefecture_forwarding'))
    )
    with op.batch_alter_table('prefecture_forwarding', schema=None) as batch_op:
        batch_op.create_index('ix_prefecture_forwarding_pending', ['forwarded_at', 'id'], unique=False)

    op.create_table('search_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('operation', sa.String(length=64), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('purpose', sa.String(length=200), nullable=False),
    sa.Column('items', sa.String(length=128), nullable=False),
    sa.Column('candidates', sa.Integer(), nullable=False),
    sa.Column('shown', sa.Text(), nullable=False),
    sa.Column('prefecture_consulted', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_search_records'))
    )
    with op.batch_alter_table('search_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_search_records_at'), ['at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('search_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_search_records_at'))

    op.drop_table('search_records')
    with op.batch_alter_table('prefecture_forwarding', schema=None) as batch_op:
        batch_op.drop_index('ix_prefecture_forwarding_pending')

    op.drop_table('prefecture_forwarding')
    op.drop_table('identity_info')
    op.drop_table('consistency_checks')
    with op.batch_alter_table('card_verifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_card_verifications_at'))

    op.drop_table('card_verifications')
