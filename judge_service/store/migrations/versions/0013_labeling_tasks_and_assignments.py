"""labelling tasks and their blind per-rater assignments (issue 11)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "labeling_tasks",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("experiment_id", BigId, nullable=False),
        sa.Column("rubric", sa.String(length=120), nullable=False),
        sa.Column("dimensions", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("raters", sa.JSON(), nullable=False),
        sa.Column("raters_per_pair", sa.SmallInteger(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("sample", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_labeling_tasks_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labeling_tasks")),
        sa.UniqueConstraint("name", name=op.f("uq_labeling_tasks_name")),
    )
    op.create_index(op.f("ix_labeling_tasks_experiment_id"), "labeling_tasks", ["experiment_id"], unique=False)
    op.create_table(
        "labeling_assignments",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("task_id", BigId, nullable=False),
        sa.Column("pair_id", BigId, nullable=False),
        sa.Column("rater", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("answer_1_is_ft", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("preference", sa.String(length=4), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["labeling_tasks.id"],
            name=op.f("fk_labeling_assignments_task_id_labeling_tasks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pair_id"], ["pairs.id"], name=op.f("fk_labeling_assignments_pair_id_pairs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labeling_assignments")),
        sa.UniqueConstraint("token", name=op.f("uq_labeling_assignments_token")),
        sa.UniqueConstraint("task_id", "pair_id", "rater", name=op.f("uq_labeling_assignments_task_id")),
    )
    op.create_index(op.f("ix_labeling_assignments_task_id"), "labeling_assignments", ["task_id"], unique=False)
    op.create_index(op.f("ix_labeling_assignments_pair_id"), "labeling_assignments", ["pair_id"], unique=False)
    op.create_index(
        "ix_labeling_assignments_rater", "labeling_assignments", ["rater", "task_id", "position"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_labeling_assignments_rater", table_name="labeling_assignments")
    op.drop_index(op.f("ix_labeling_assignments_pair_id"), table_name="labeling_assignments")
    op.drop_index(op.f("ix_labeling_assignments_task_id"), table_name="labeling_assignments")
    op.drop_table("labeling_assignments")
    op.drop_index(op.f("ix_labeling_tasks_experiment_id"), table_name="labeling_tasks")
    op.drop_table("labeling_tasks")
