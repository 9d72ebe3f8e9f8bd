"""Create tracks, requests, download jobs

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=True),
        sa.Column("reply_message_id", sa.String(length=64), nullable=True),
        sa.Column("link", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("spotify_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("quality", sa.String(length=16), nullable=False),
        sa.Column("metadata_source", sa.String(length=16), nullable=False),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("capped_at", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_requests")),
    )
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_requests_user_id"), ["user_id"], unique=False)

    op.create_table(
        "tracks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("spotify_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("artists", sa.JSON(), nullable=False),
        sa.Column("album", sa.Text(), nullable=False),
        sa.Column("album_id", sa.String(length=64), nullable=False),
        sa.Column("album_artist", sa.Text(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("track_number", sa.Integer(), nullable=False),
        sa.Column("disc_number", sa.Integer(), nullable=False),
        sa.Column("disc_count", sa.Integer(), nullable=False),
        sa.Column("tracks_count", sa.Integer(), nullable=False),
        sa.Column("release_date", sa.String(length=16), nullable=False),
        sa.Column("isrc", sa.String(length=32), nullable=True),
        sa.Column("publisher", sa.Text(), nullable=False),
        sa.Column("genres", sa.JSON(), nullable=False),
        sa.Column("cover_url", sa.Text(), nullable=True),
        sa.Column("explicit", sa.Boolean(), nullable=False),
        sa.Column("copyright", sa.Text(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracks")),
        sa.UniqueConstraint("spotify_id", name=op.f("uq_tracks_spotify_id")),
    )
    op.create_table(
        "download_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("quality", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("output_path", sa.Text(), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("worker_id", sa.String(length=64), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["track_id"],
            ["tracks.id"],
            name=op.f("fk_download_jobs_track_id_tracks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_download_jobs")),
        sa.UniqueConstraint("track_id", "quality", name="uq_download_jobs_track"),
    )
    with op.batch_alter_table("download_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_download_jobs_status"), ["status"], unique=False)

    op.create_table(
        "request_items",
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["download_jobs.id"], name=op.f("fk_request_items_job_id_download_jobs")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_request_items_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", "position", name=op.f("pk_request_items")),
    )
    with op.batch_alter_table("request_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_request_items_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("request_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_items_job_id"))

    op.drop_table("request_items")
    with op.batch_alter_table("download_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_download_jobs_status"))

    op.drop_table("download_jobs")
    op.drop_table("tracks")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requests_user_id"))

    op.drop_table("requests")
