"""What the chat bots remember besides requests: each person's quality, and sent file ids.

A platform's file id (Telegram's `file_id`) lets a track already posted be posted again
without an upload; it is kept per bot, track and quality, and forgotten when the
platform no longer accepts it.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite

from storage.db import Database
from storage.models import SentFile, UserSetting, utcnow


class ChatMemory:
    """Reads and writes `user_settings` and `sent_files`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def quality(self, platform: str, user_id: str) -> str | None:
        """The quality this person chose, or None when they never chose one."""
        async with self.db.session() as session:
            row = await session.get(UserSetting, (platform, user_id))
            return row.quality if row is not None else None

    async def set_quality(self, platform: str, user_id: str, quality: str) -> None:
        """Remember this person's quality."""
        values = {
            "platform": platform,
            "user_id": user_id,
            "quality": quality,
            "updated_at": utcnow(),
        }
        dialect = sqlite if self.db.is_sqlite else postgresql
        statement = dialect.insert(UserSetting).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["platform", "user_id"],
            set_={"quality": quality, "updated_at": values["updated_at"]},
        )
        async with self.db.session() as session:
            await session.execute(statement)

    async def file_id(
        self, platform: str, bot_id: str, spotify_id: str, quality: str
    ) -> str | None:
        """The file id this bot was given for the track at this quality, if any."""
        async with self.db.session() as session:
            row = await session.get(SentFile, (platform, bot_id, spotify_id, quality))
            return row.file_id if row is not None else None

    async def remember_file_id(
        self, platform: str, bot_id: str, spotify_id: str, quality: str, file_id: str
    ) -> None:
        """Keep the file id the platform gave for an upload (the newest wins)."""
        values = {
            "platform": platform,
            "bot_id": bot_id,
            "spotify_id": spotify_id,
            "quality": quality,
            "file_id": file_id,
            "created_at": utcnow(),
        }
        dialect = sqlite if self.db.is_sqlite else postgresql
        statement = dialect.insert(SentFile).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["platform", "bot_id", "spotify_id", "quality"],
            set_={"file_id": file_id, "created_at": values["created_at"]},
        )
        async with self.db.session() as session:
            await session.execute(statement)

    async def forget_file_id(
        self, platform: str, bot_id: str, spotify_id: str, quality: str
    ) -> None:
        """Drop a file id the platform refused."""
        async with self.db.session() as session:
            await session.execute(
                delete(SentFile).where(
                    SentFile.platform == platform,
                    SentFile.bot_id == bot_id,
                    SentFile.spotify_id == spotify_id,
                    SentFile.quality == quality,
                )
            )
