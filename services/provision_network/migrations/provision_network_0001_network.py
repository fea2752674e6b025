"""institutions, issued symbols and permits

Revision ID: provision_network_0001
Revises:
Create Date: 2026-11-27 10:19:39.467649
"""

from alembic import op
import sqlalchemy as sa


revision = 'provision_network_0001'
down_revision = None
branch_labels = ('provision_network',)
depends_on = None


def upgrade() -> None:
    op.create_table('institutions',
    sa.Column('code', sa.String(length=6), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('network_url', sa.String(length=255), nullable=False),
    sa.Column('answer_key', sa.Text(), nullable=False),
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_institutions'))
    )
    op.create_table('issued_symbols',
    sa.Column('institution', sa.String(length=6), nullable=False),
    sa.Column('person_ref', sa.String(length=64), nullable=False),
    sa.Column('symbol', sa.String(length=40), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('institution', 'person_ref', name=op.f('pk_issued_symbols')),
    sa.UniqueConstraint('institution', 'symbol', name='uq_issued_symbols_institution_symbol')
    )
    op.create_table('permits',
    sa.Column('serial_number', sa.String(length=64), nullable=False),
    sa.Column('query_id', sa.String(length=32), nullable=False),
    sa.Column('requester', sa.String(length=6), nullable=False),
    sa.Column('provider', sa.String(length=6), nullable=False),
    sa.Column('affair_code', sa.String(length=16), nullable=False),
    sa.Column('procedure_code', sa.String(length=16), nullable=False),
    sa.Column('item_code', sa.String(length=16), nullable=False),
    sa.Column('requester_symbol', sa.String(length=40), nullable=False),
    sa.Column('provider_symbol', sa.String(length=40), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('serial_number', name=op.f('pk_permits'))
    )
    with op.batch_alter_table('permits', schema=None) as batch_op:
        batch_op.create_index('ix_permits_requester_query', ['requester', 'query_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('permits', schema=None) as batch_op:
        batch_op.drop_index('ix_permits_requester_query')

    op.drop_table('permits')
    op.drop_table('issued_symbols')
    op.drop_table('institutions')
