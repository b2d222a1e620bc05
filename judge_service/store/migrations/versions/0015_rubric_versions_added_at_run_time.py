"""rubric versions added at run time: origin and who added them (issue 10, item 6)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rubric_versions") as batch:
        batch.add_column(sa.Column("origin", sa.String(length=16), server_default="file", nullable=False))
        batch.add_column(sa.Column("added_by", sa.String(length=200), nullable=True))
        batch.create_index("ix_rubric_versions_origin_name", ["origin", "name"])


def downgrade() -> None:
    with op.batch_alter_table("rubric_versions") as batch:
        batch.drop_index("ix_rubric_versions_origin_name")
        batch.drop_column("added_by")
        batch.drop_column("origin")
