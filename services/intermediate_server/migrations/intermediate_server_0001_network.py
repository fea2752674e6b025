"""symbols, queries, provision database, review queue

Revision ID: intermediate_server_0001
Revises:
Create Date: 2026-11-27 10:23:04.251333
"""

from alembic import op
import sqlalchemy as sa


revision = 'intermediate_server_0001'
down_revision = None
branch_labels = ('intermediate_server',)
depends_on = None


def upgrade() -> None:
    op.create_table('batch_runs',
    sa.Column('tenant', sa.String(length=6), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('runs', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'name', name=op.f('pk_batch_runs'))
    )
    op.create_table('permitted_list_copies',
    sa.Column('tenant', sa.String(length=6), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tenant', name=op.f('pk_permitted_list_copies'))
    )
    op.create_table('provision_copies',
    sa.Column('tenant', sa.String(length=6), nullable=False),
    sa.Column('integrated_address_number', sa.String(length=15), nullable=False),
    sa.Column('item_code', sa.String(length=16), nullable=False),
    sa.Column('records', sa.Text(), nullable=False),
    sa.Column('record_count', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('registered_by', sa.String(length=64), nullable=False),
    sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'integrated_address_number', 'item_code', name=op.f('pk_provision_copies'))
    )
    with op.batch_alter_table('provision_copies', schema=None) as batch_op:
        batch_op.create_index('ix_provision_copies_tenant_item', ['tenant', 'item_code', 'integrated_address_number'], unique=False)

    op.create_table('queries',
    sa.Column('tenant', sa.String(length=6), nullable=False),
    sa.Column('query_id', sa.String(length=32), nullable=False),
    sa.Column('integrated_address_number', sa.String(length=15), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=6), nullable=False),
    sa.Column('affair_code', sa.String(length=16), nullable=False),
    sa.Column('procedure_code', sa.String(length=16), nullable=False),
    sa.Column('item_code', sa.String(length=16), nullable=False),
    sa.Column('consent', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('serial_number', sa.String(length=64), nullable=True),
    sa.Column('records', sa.Text(), nullable=True),
    sa.Column('refusal_reason', sa.String(length=500), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('tenant', 'query_id', name=op.f('pk_queries'))
    )
    with op.batch_alter_table('queries', schema=None) as batch_op:
        batch_op.create_index('ix_queries_tenant_serial', ['tenant', 'serial_number'], unique=False)
        batch_op.create_index('ix_queries_tenant_status_updated', ['tenant', 'status', 'updated_at'], unique=False)

    op.create_table('result_deletions',
    sa.Column('tenant', sa.String(length=6), nullable=False),
    sa.Column('query_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'query_id', name=op.f('pk_result_deletions'))
    )
    with op.batch_alter_table('result_deletions', schema=None) as batch_op:
        batch_op.create_index('ix_result_deletions_tenant_deleted', ['tenant', 'deleted_at'], unique=False)

    op.create_table('review_items',
    sa.Column('tenant', sa.String(length=6), nullable=False),
    sa.Column('serial_number', sa.String(length=64), nullable=False),
    sa.Column('query_id', sa.String(length=32), nullable=False),
    sa.Column('requester', sa.String(length=6), nullable=False),
    sa.Column('affair_code', sa.String(length=16), nullable=False),
    sa.Column('procedure_code', sa.String(length=16), nullable=False),
    sa.Column('item_code', sa.String(length=16), nullable=False),
    sa.Column('integrated_address_number', sa.String(length=15), nullable=False),
    sa.Column('permit', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('refusal_reason', sa.String(length=500), nullable=True),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivery_attempts', sa.Integer(), nullable=False),
    sa.Column('delivery_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('tenant', 'serial_number', name=op.f('pk_review_items'))
    )
    with op.batch_alter_table('review_items', schema=None) as batch_op:
        batch_op.create_index('ix_review_items_tenant_state', ['tenant', 'state', 'received_at'], unique=False)

    op.create_table('symbol_links',
    sa.Column('tenant', sa.String(length=6), nullable=False),
    sa.Column('integrated_address_number', sa.String(length=15), nullable=False),
    sa.Column('symbol', sa.String(length=40), nullable=False),
    sa.Column('obtained_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'integrated_address_number', name=op.f('pk_symbol_links')),
    sa.UniqueConstraint('tenant', 'symbol', name='uq_symbol_links_tenant_symbol')
    )
    op.create_table('symbol_requests',
    sa.Column('tenant', sa.String(length=6), nullable=False),
    sa.Column('integrated_address_number', sa.String(length=15), nullable=False),
    sa.Column('resident_code', sa.String(length=11), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('tenant', 'integrated_address_number', name=op.f('pk_symbol_requests'))
    )
    op.create_table('used_permits',
    sa.Column('tenant', sa.String(length=6), nullable=False),
    sa.Column('serial_number', sa.String(length=64), nullable=False),
    sa.Column('query_id', sa.String(length=32), nullable=False),
    sa.Column('requester', sa.String(length=6), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'serial_number', name=op.f('pk_used_permits'))
    )


def downgrade() -> None:
    op.drop_table('used_permits')
    op.drop_table('symbol_requests')
    op.drop_table('symbol_links')
    with op.batch_alter_table('review_items', schema=None) as batch_op:
        batch_op.drop_index('ix_review_items_tenant_state')

    op.drop_table('review_items')
    with op.batch_alter_table('result_deletions', schema=None) as batch_op:
        batch_op.drop_index('ix_result_deletions_tenant_deleted')

    op.drop_table('result_deletions')
    with op.batch_alter_table('queries', schema=None) as batch_op:
        batch_op.drop_index('ix_queries_tenant_status_updated')
        batch_op.drop_index('ix_queries_tenant_serial')

    op.drop_table('queries')
    with op.batch_alter_table('provision_copies', schema=None) as batch_op:
        batch_op.drop_index('ix_provision_copies_tenant_item')

    op.drop_table('provision_copies')
    op.drop_table('permitted_list_copies')
    op.drop_table('batch_runs')
