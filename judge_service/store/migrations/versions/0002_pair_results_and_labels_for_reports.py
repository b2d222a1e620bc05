"""pair results and labels for reports

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("texts_hash", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_pairs_texts_hash"), ["texts_hash"], unique=False)
    op.create_table(
        "result_sets",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("experiment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("rubric_version_id", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint_id", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_result_sets_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_result_sets")),
        sa.UniqueConstraint(
            "experiment_id",
            "source",
            "rubric_version_id",
            "fingerprint_id",
            "mode",
            "purpose",
            "scope",
            name=op.f("uq_result_sets_experiment_id"),
        ),
    )
    with op.batch_alter_table("result_sets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_result_sets_experiment_id"), ["experiment_id"], unique=False)

    op.create_table(
        "labels",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("experiment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("pair_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("annotator", sa.String(length=200), nullable=False),
        sa.Column("dimension", sa.String(length=24), nullable=False),
        sa.Column("s_ft", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name=op.f("fk_labels_experiment_id_experiments"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["pair_id"], ["pairs.id"], name=op.f("fk_labels_pair_id_pairs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("key", name=op.f("uq_labels_key")),
    )
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_labels_experiment_id"), ["experiment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_labels_pair_id"), ["pair_id"], unique=False)

    op.create_table(
        "pair_dimension_results",
        sa.Column("result_set_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("dimension", sa.String(length=24), nullable=False),
        sa.Column("pair_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("base_mean", sa.Float(), nullable=True),
        sa.Column("ft_mean", sa.Float(), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pair_id"], ["pairs.id"], name=op.f("fk_pair_dimension_results_pair_id_pairs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["result_set_id"],
            ["result_sets.id"],
            name=op.f("fk_pair_dimension_results_result_set_id_result_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("result_set_id", "dimension", "pair_id", name=op.f("pk_pair_dimension_results")),
    )
    with op.batch_alter_table("pair_dimension_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pair_dimension_results_pair_id"), ["pair_id"], unique=False)

    op.create_table(
        "pair_results",
        sa.Column("result_set_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("pair_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("n_valid", sa.Integer(), nullable=False),
        sa.Column("n_failed", sa.Integer(), nullable=False),
        sa.Column("s_base_first", sa.Float(), nullable=True),
        sa.Column("s_ft_first", sa.Float(), nullable=True),
        sa.Column("inconsistent", sa.Boolean(), nullable=False),
        sa.Column("orders_agree", sa.Boolean(), nullable=True),
        sa.Column("a_picks", sa.Integer(), nullable=False),
        sa.Column("decisive", sa.Integer(), nullable=False),
        sa.Column("tags_base_mask", sa.Integer(), nullable=False),
        sa.Column("tags_ft_mask", sa.Integer(), nullable=False),
        sa.Column("base_len", sa.Integer(), nullable=False),
        sa.Column("ft_len", sa.Integer(), nullable=False),
        sa.Column("judged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["pair_id"], ["pairs.id"], name=op.f("fk_pair_results_pair_id_pairs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["result_set_id"],
            ["result_sets.id"],
            name=op.f("fk_pair_results_result_set_id_result_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("result_set_id", "pair_id", name=op.f("pk_pair_results")),
    )
    with op.batch_alter_table("pair_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pair_results_pair_id"), ["pair_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pairs_texts_hash"))
        batch_op.drop_column("texts_hash")
    with op.batch_alter_table("pair_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pair_results_pair_id"))

    op.drop_table("pair_results")
    with op.batch_alter_table("pair_dimension_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pair_dimension_results_pair_id"))

    op.drop_table("pair_dimension_results")
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_labels_pair_id"))
        batch_op.drop_index(batch_op.f("ix_labels_experiment_id"))

    op.drop_table("labels")
    with op.batch_alter_table("result_sets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_result_sets_experiment_id"))

    op.drop_table("result_sets")
