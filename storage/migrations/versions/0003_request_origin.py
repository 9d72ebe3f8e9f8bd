"""Remember the message and the kind of chat each request came from

A request is now recorded (status "resolving") before its metadata is read, so a bot that
dies then can answer it on its next start, quoting the person's message and pacing its
chat as before.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chat_is_private", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("source_message_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("source_message_id")
        batch_op.drop_column("chat_is_private")
