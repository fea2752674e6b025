"""ledger tables

Revision ID: ledger_0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

import shared.ledger.models

revision = 'ledger_0001'
down_revision = None
branch_labels = ('ledger',)
depends_on = None


def upgrade() -> None:
    op.create_table('ledger_checkpoints',
    sa.Column('tenant', sa.String(length=8), nullable=False),
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('tree_size', sa.BigInteger(), nullable=False),
    sa.Column('root_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('made_at', shared.ledger.models.UtcTime(length=27), nullable=False),
    sa.Column('signature', sa.LargeBinary(length=64), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'seq', name=op.f('pk_ledger_checkpoints'))
    )
    op.create_table('ledger_leaves',
    sa.Column('tenant', sa.String(length=8), nullable=False),
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'idx', name=op.f('pk_ledger_leaves'))
    )
    op.create_table('ledger_nodes',
    sa.Column('tenant', sa.String(length=8), nullable=False),
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'level', 'idx', name=op.f('pk_ledger_nodes'))
    )
    op.create_table('ledger_provision_records',
    sa.Column('tenant', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('requester', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('affair_code', sa.String(length=16), nullable=False),
    sa.Column('procedure_code', sa.String(length=16), nullable=False),
    sa.Column('item_code', sa.String(length=16), nullable=False),
    sa.Column('serial_number', sa.String(length=64), nullable=False),
    sa.Column('requested_at', shared.ledger.models.UtcTime(length=27), nullable=False),
    sa.Column('provided_at', shared.ledger.models.UtcTime(length=27), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('refusal_reason', sa.String(length=500), nullable=True),
    sa.Column('non_disclosure', sa.Boolean(), nullable=False),
    sa.Column('person_key', sa.String(length=64), nullable=False),
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'idx', name=op.f('pk_ledger_provision_records'))
    )
    with op.batch_alter_table('ledger_provision_records', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_provision_records_person', ['tenant', 'person_key'], unique=False)

    op.create_table('ledger_pruning_records',
    sa.Column('tenant', sa.String(length=8), nullable=False),
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('pruned_before', shared.ledger.models.UtcTime(length=27), nullable=False),
    sa.Column('first_index', sa.BigInteger(), nullable=False),
    sa.Column('end_index', sa.BigInteger(), nullable=False),
    sa.Column('records_pruned', sa.BigInteger(), nullable=False),
    sa.Column('pruned_at', shared.ledger.models.UtcTime(length=27), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'idx', name=op.f('pk_ledger_pruning_records'))
    )
    op.create_table('ledger_seals',
    sa.Column('tenant', sa.String(length=8), nullable=False),
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('first_index', sa.BigInteger(), nullable=False),
    sa.Column('tree_size', sa.BigInteger(), nullable=False),
    sa.Column('root_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('sealed_at', shared.ledger.models.UtcTime(length=27), nullable=False),
    sa.Column('signature', sa.LargeBinary(length=64), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'seq', name=op.f('pk_ledger_seals')),
    sa.UniqueConstraint('tenant', 'tree_size', name='uq_ledger_seals_tree_size')
    )
    op.create_table('ledger_trees',
    sa.Column('tenant', sa.String(length=8), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('frontier', sa.LargeBinary(), nullable=False),
    sa.Column('seals', sa.BigInteger(), nullable=False, comment="how many batch seals: the next seal's seq"),
    sa.Column('last_sealed_at', shared.ledger.models.UtcTime(length=27), nullable=True),
    sa.PrimaryKeyConstraint('tenant', name=op.f('pk_ledger_trees'))
    )


def downgrade() -> None:
    op.drop_table('ledger_trees')
    op.drop_table('ledger_seals')
    op.drop_table('ledger_pruning_records')
    with op.batch_alter_table('ledger_provision_records', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_provision_records_person')

    op.drop_table('ledger_provision_records')
    op.drop_table('ledger_nodes')
    op.drop_table('ledger_leaves')
    op.drop_table('ledger_checkpoints')
