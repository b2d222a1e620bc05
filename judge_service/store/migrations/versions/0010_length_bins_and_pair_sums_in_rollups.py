"""length bins and per-pair sums in the pair result rollups

The length-controlled win rate needs pair counts per length-difference bin, and the slot-A share
clustered by pair needs per-pair sums of squares. Rollups are derived data: the table is rebuilt
with the new key and columns and refilled from the pair results.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_SUMS = (
    "pairs, n_failed, a_picks, decisive, base_len, ft_len, repeat_verdicts, repeat_matched, length_diff, "
    "decisive_pairs, a_picks_sq, decisive_sq, a_picks_decisive"
)


def _table(with_new: bool) -> None:
    extra_keys = ["length_bin"] if with_new else []
    columns: list[sa.schema.SchemaItem] = [
        sa.Column("result_set_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("inconsistent", sa.Boolean(), nullable=False),
        sa.Column("orders_agree", sa.SmallInteger(), nullable=False),
        sa.Column("length_cmp", sa.SmallInteger(), nullable=False),
    ]
    if with_new:
        columns.append(sa.Column("length_bin", sa.SmallInteger(), nullable=False))
    columns += [
        sa.Column(name, sa.BigInteger(), nullable=False)
        for name in ("pairs", "n_failed", "a_picks", "decisive", "base_len", "ft_len")
    ]
    # Added by 0009; kept in both shapes of the table.
    columns += [
        sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)
        for name in ("repeat_verdicts", "repeat_matched")
    ]
    if with_new:
        columns.append(sa.Column("length_diff", sa.Float(), nullable=False))
        columns += [
            sa.Column(name, sa.BigInteger(), nullable=False)
            for name in ("decisive_pairs", "a_picks_sq", "decisive_sq", "a_picks_decisive")
        ]
    op.create_table(
        "pair_result_rollups",
        *columns,
        sa.ForeignKeyConstraint(
            ["result_set_id"],
            ["result_sets.id"],
            name=op.f("fk_pair_result_rollups_result_set_id_result_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "result_set_id",
            "score",
            "inconsistent",
            "orders_agree",
            "length_cmp",
            *extra_keys,
            name=op.f("pk_pair_result_rollups"),
        ),
    )


def _refill(with_new: bool) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    d = (
        "CASE WHEN ft_len + base_len = 0 THEN 0.0 "
        "ELSE CAST(ft_len - base_len AS FLOAT) / CAST(ft_len + base_len AS FLOAT) END"
    )
    shifted = f"(({d}) + 1.0) * 20 + 0.5"
    length_bin = f"CAST(floor({shifted}) AS INTEGER)" if postgres else f"CAST({shifted} AS INTEGER)"
    a, m = "COALESCE(a_picks, 0)", "COALESCE(decisive, 0)"
    keys = (
        "result_set_id, COALESCE(score, -1.0), inconsistent, "
        "CASE WHEN orders_agree IS NULL THEN -1 WHEN orders_agree THEN 1 ELSE 0 END, "
        "CASE WHEN ft_len > base_len THEN 1 WHEN ft_len < base_len THEN -1 ELSE 0 END"
    )
    common = (
        f"count(*), COALESCE(sum(n_failed), 0), sum({a}), sum({m}), sum(base_len), sum(ft_len), "
        "COALESCE(sum(repeat_verdicts), 0), COALESCE(sum(repeat_matched), 0)"
    )
    sums = (
        common
        if not with_new
        else f"{common}, sum({d}), "
        f"sum(CASE WHEN {m} > 0 THEN 1 ELSE 0 END), sum({a} * {a}), sum({m} * {m}), sum({a} * {m})"
    )
    if with_new:
        keys += f", {length_bin}"
    names = "result_set_id, score, inconsistent, orders_agree, length_cmp" + (
        ", length_bin, " + _SUMS
        if with_new
        else ", pairs, n_failed, a_picks, decisive, base_len, ft_len, repeat_verdicts, repeat_matched"
    )
    op.execute(f"INSERT INTO pair_result_rollups ({names}) SELECT {keys}, {sums} FROM pair_results GROUP BY {keys}")


def upgrade() -> None:
    op.drop_table("pair_result_rollups")
    _table(with_new=True)
    _refill(with_new=True)


def downgrade() -> None:
    op.drop_table("pair_result_rollups")
    _table(with_new=False)
    _refill(with_new=False)
