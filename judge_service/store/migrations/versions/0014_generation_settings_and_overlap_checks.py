"""generation settings per pair and experiment; eval/train overlap checks (issue 10, items 4 and 5)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("base_generation", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("ft_generation", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("has_pair_generation", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("generation", sa.JSON(), nullable=True))
    op.create_table(
        "overlap_checks",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("experiment_id", BigId, nullable=False),
        sa.Column("train_sha256", sa.String(length=64), nullable=False),
        sa.Column("train_name", sa.String(length=300), nullable=True),
        sa.Column("train_lines", sa.Integer(), nullable=False),
        sa.Column("train_texts", sa.Integer(), nullable=False),
        sa.Column("eval_pairs", sa.Integer(), nullable=False),
        sa.Column("exact", sa.Integer(), nullable=False),
        sa.Column("near", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_overlap_checks_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_overlap_checks")),
    )
    op.create_index(op.f("ix_overlap_checks_experiment_id"), "overlap_checks", ["experiment_id"], unique=False)
    op.create_table(
        "overlap_matches",
        sa.Column("check_id", BigId, nullable=False),
        sa.Column("pair_id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("train_line", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["check_id"],
            ["overlap_checks.id"],
            name=op.f("fk_overlap_matches_check_id_overlap_checks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pair_id"], ["pairs.id"], name=op.f("fk_overlap_matches_pair_id_pairs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("check_id", "pair_id", name=op.f("pk_overlap_matches")),
    )
    op.create_index(op.f("ix_overlap_matches_pair_id"), "overlap_matches", ["pair_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_overlap_matches_pair_id"), table_name="overlap_matches")
    op.drop_table("overlap_matches")
    op.drop_index(op.f("ix_overlap_checks_experiment_id"), table_name="overlap_checks")
    op.drop_table("overlap_checks")
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.drop_column("generation")
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_column("has_pair_generation")
        batch_op.drop_column("ft_generation")
        batch_op.drop_column("base_generation")
