"""review items no longer pass through 'deciding': a decision is one transaction

Revision ID: intermediate_server_0003
Revises: intermediate_server_0002
Create Date: 2026-11-28
"""

from alembic import op


revision = 'intermediate_server_0003'
down_revision = 'intermediate_server_0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # An item left 'deciding' by an interrupted decision was never decided: it waits again.
    op.execute("UPDATE review_items SET state = 'waiting', decided_by = NULL WHERE state = 'deciding'")


def downgrade() -> None:
    pass
