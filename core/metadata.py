"""Reading a link's track list: the Spotify Web API first, spotdl's lookup when it refuses.

`MetadataReader` is what the import service calls. Links the Web API refuses (404, as for
Spotify's editorial playlists; 403, as for other people's playlists; no credentials) are read
with spotdl when METADATA_FALLBACK is `spotdl`, and the result says which source was used.
"""

from __future__ import annotations

import logging

from config.settings import MetadataFallback, Settings
from core.errors import (
    MetadataFallbackError,
    SoundForgeError,
    SpotifyCredentialsMissing,
    SpotifyForbidden,
    SpotifyNotFound,
)
from core.fallback import SpotdlMetadata
from core.spotify import SpotifyClient, cap_track_list
from core.types import SpotifyLink, TrackList

logger = logging.getLogger(__name__)

# What the Web API may refuse that spotdl's own lookup can still read.
FALLBACK_ON = (SpotifyNotFound, SpotifyForbidden, SpotifyCredentialsMissing)


class MetadataReader:
    """Reads a link with the Web API, falling back to spotdl as the settings say."""

    def __init__(
        self, settings: Settings, spotify: SpotifyClient, fallback: SpotdlMetadata | None
    ) -> None:
        self._settings = settings
        self._spotify = spotify
        self._fallback = fallback

    @property
    def falls_back(self) -> bool:
        """True when refused links are read with spotdl."""
        return (
            self._fallback is not None
            and self._settings.metadata_fallback is MetadataFallback.SPOTDL
        )

    async def read(self, link: SpotifyLink, *, user_token: str | None = None) -> TrackList:
        """The tracks behind `link`, at most MAX_TRACKS_PER_REQUEST of them."""
        try:
            result = await self._spotify.fetch(link, user_token=user_token)
        except FALLBACK_ON as exc:
            if not self.falls_back or self._fallback is None:
                raise
            logger.warning(
                "The Web API refused %s %s (%s); reading it with spotdl.",
                link.kind,
                link.spotify_id,
                type(exc).__name__,
            )
            result = await self._read_with_spotdl(self._fallback, link, exc)
        return cap_track_list(result, self._settings.max_tracks_per_request)

    async def _read_with_spotdl(
        self, fallback: SpotdlMetadata, link: SpotifyLink, refusal: SoundForgeError
    ) -> TrackList:
        try:
            return await fallback.fetch(link)
        except MetadataFallbackError as exc:
            raise MetadataFallbackError(exc.url, exc.reason, original=refusal) from exc
        except SoundForgeError as exc:
            raise MetadataFallbackError(link.url, str(exc), original=refusal) from exc
