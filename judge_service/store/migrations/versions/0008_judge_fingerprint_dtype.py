"""judge fingerprint records the dtype the judge serves

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"  # rechained after 0007 (work batches) on wip-durable
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows recorded before keep NULL: their dtype was not known, and their hash does not include one.
    with op.batch_alter_table("judge_fingerprints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dtype", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("judge_fingerprints", schema=None) as batch_op:
        batch_op.drop_column("dtype")
