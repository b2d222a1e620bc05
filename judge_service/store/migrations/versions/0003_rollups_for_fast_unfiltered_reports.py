"""rollups for fast unfiltered reports

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dimension_rollups",
        sa.Column("result_set_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("dimension", sa.String(length=24), nullable=False),
        sa.Column("base_mean", sa.Float(), nullable=False),
        sa.Column("ft_mean", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("pairs", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["result_set_id"],
            ["result_sets.id"],
            name=op.f("fk_dimension_rollups_result_set_id_result_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "result_set_id", "dimension", "base_mean", "ft_mean", "score", name=op.f("pk_dimension_rollups")
        ),
    )
    op.create_table(
        "pair_result_rollups",
        sa.Column("result_set_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("inconsistent", sa.Boolean(), nullable=False),
        sa.Column("orders_agree", sa.SmallInteger(), nullable=False),
        sa.Column("length_cmp", sa.SmallInteger(), nullable=False),
        sa.Column("pairs", sa.BigInteger(), nullable=False),
        sa.Column("n_failed", sa.BigInteger(), nullable=False),
        sa.Column("a_picks", sa.BigInteger(), nullable=False),
        sa.Column("decisive", sa.BigInteger(), nullable=False),
        sa.Column("base_len", sa.BigInteger(), nullable=False),
        sa.Column("ft_len", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["result_set_id"],
            ["result_sets.id"],
            name=op.f("fk_pair_result_rollups_result_set_id_result_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "result_set_id", "score", "inconsistent", "orders_agree", "length_cmp", name=op.f("pk_pair_result_rollups")
        ),
    )


def downgrade() -> None:
    op.drop_table("pair_result_rollups")
    op.drop_table("dimension_rollups")
