"""pair results and rollups count repeat agreement; pair scores follow the order-mean rule

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pair_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repeat_verdicts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("repeat_matched", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("pair_result_rollups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repeat_verdicts", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("repeat_matched", sa.BigInteger(), server_default="0", nullable=False))
    # Pair results stored before this revision scored a pair by the mean of all its valid
    # judgments, and a pair with one order failed was scored by the other order alone.
    # `judge-service rescore` recomputes them (docs/statistics.md); repeat counts stay 0 until then,
    # and the report shows repeat agreement as unknown.


def downgrade() -> None:
    with op.batch_alter_table("pair_result_rollups", schema=None) as batch_op:
        batch_op.drop_column("repeat_matched")
        batch_op.drop_column("repeat_verdicts")
    with op.batch_alter_table("pair_results", schema=None) as batch_op:
        batch_op.drop_column("repeat_matched")
        batch_op.drop_column("repeat_verdicts")
