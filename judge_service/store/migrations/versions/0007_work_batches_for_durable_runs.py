"""work batches with renewed leases, judgment claims by batch, and procrastinate's queue schema

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def _apply_queue_schema() -> None:
    """procrastinate's tables and functions, once, on PostgreSQL (the queue executor needs them).

    The schema text comes from the installed procrastinate (pinned to 3.x in pyproject.toml); a
    later procrastinate that ships schema migrations gets an Alembic revision applying them.
    """
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if bind.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
        return
    from procrastinate.schema import SchemaManager
    from sqlalchemy.util import await_only

    # A multi-statement script: asyncpg runs it with the simple query protocol, in this transaction.
    driver = bind.connection.driver_connection
    assert driver is not None
    await_only(driver.execute(SchemaManager.get_schema()))


def upgrade() -> None:
    op.create_table(
        "work_batches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("judgment_ids", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("owner", sa.String(length=120), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_work_batches_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_batches")),
    )
    op.create_index(op.f("ix_work_batches_run_id"), "work_batches", ["run_id"], unique=False)
    op.create_index(op.f("ix_work_batches_status"), "work_batches", ["status"], unique=False)
    with op.batch_alter_table("judgments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=36), nullable=True))
        batch_op.create_index("ix_judgments_claims", ["status", "lease_until"], unique=False)
    _apply_queue_schema()


def downgrade() -> None:
    with op.batch_alter_table("judgments", schema=None) as batch_op:
        batch_op.drop_index("ix_judgments_claims")
        batch_op.drop_column("claimed_by")
    op.drop_index(op.f("ix_work_batches_status"), table_name="work_batches")
    op.drop_index(op.f("ix_work_batches_run_id"), table_name="work_batches")
    op.drop_table("work_batches")
