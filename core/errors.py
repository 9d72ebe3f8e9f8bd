"""SoundForge's own errors, each carrying the value that caused it.

The tree::

    SoundForgeError
    ├── LinkError
    │   ├── InvalidLink
    │   ├── UnsupportedLink          (podcast episodes and shows)
    │   └── ShortLinkError
    ├── SpotifyError
    │   ├── SpotifyCredentialsMissing
    │   ├── SpotifyAuthError
    │   ├── SpotifyNotFound
    │   ├── SpotifyForbidden
    │   ├── SpotifyRateLimited
    │   └── SpotifyUnavailable
    ├── MetadataFallbackError
    ├── StorageError
    ├── DownloadDirUnavailable
    ├── PortUnavailable
    ├── QueueUnavailable
    ├── ChatStartFailed              (a chat platform refused to start the bot)
    └── DownloadError                (carries `permanent` and a user sentence)
        ├── SpotdlMissing
        ├── FfmpegMissing
        ├── SourceNotFound
        ├── SourceSignInRequired
        ├── SourceRateLimited
        ├── DiskFull
        ├── DownloadTimeout
        └── DownloadFailed

`user_message` on each class is the one sentence a person sees; handlers log
the detail and show that sentence, never `str(exc)` of a foreign error.
"""

from __future__ import annotations


class SoundForgeError(Exception):
    """Base of every error SoundForge raises on purpose."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.user_message)
        self.detail = detail

    @property
    def user_message(self) -> str:
        """One sentence for the person who asked."""
        return "Something went wrong on our side; please try again later."


class LinkError(SoundForgeError):
    """Raised when a message holds no link we can import."""


class InvalidLink(LinkError):
    """Raised when text holds no Spotify track, album, playlist or artist link."""

    def __init__(self, text: str = "") -> None:
        super().__init__(f"no Spotify link in {text[:200]!r}")
        self.text = text

    @property
    def user_message(self) -> str:
        return (
            "That is not a Spotify link I can read: send a track, album, playlist "
            "or artist link from open.spotify.com or spotify.link."
        )


class UnsupportedLink(LinkError):
    """Raised when a link points at something we do not fetch (a podcast episode or show)."""

    def __init__(self, kind: str, url: str) -> None:
        super().__init__(f"{kind} link {url}")
        self.kind = kind
        self.url = url

    @property
    def user_message(self) -> str:
        return "Podcasts are not supported: send a track, album, playlist or artist link."


class ShortLinkError(LinkError):
    """Raised when a spotify.link short link cannot be resolved to a Spotify page."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason

    @property
    def user_message(self) -> str:
        return (
            "That spotify.link short link did not lead to a Spotify track, album, "
            "playlist or artist; open it in Spotify and copy the full link instead."
        )


class SpotifyError(SoundForgeError):
    """Raised when the Spotify Web API cannot give us what we asked for."""


class SpotifyCredentialsMissing(SpotifyError):
    """Raised when SPOTIFY_CLIENT_ID or SPOTIFY_CLIENT_SECRET is not set."""

    @property
    def user_message(self) -> str:
        return (
            "Spotify credentials are missing: set SPOTIFY_CLIENT_ID and "
            "SPOTIFY_CLIENT_SECRET (see the README, 'Getting credentials')."
        )


class SpotifyAuthError(SpotifyError):
    """Raised when Spotify rejects the app's credentials or a renewed token."""

    @property
    def user_message(self) -> str:
        return (
            "Spotify rejected this bot's credentials; the operator should check "
            "SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET."
        )


class SpotifyNotFound(SpotifyError):
    """Raised when Spotify answers 404: the item does not exist or is hidden from apps."""

    def __init__(self, kind: str, spotify_id: str, editorial: bool = False) -> None:
        super().__init__(f"{kind} {spotify_id} not found")
        self.kind = kind
        self.spotify_id = spotify_id
        self.editorial = editorial

    @property
    def user_message(self) -> str:
        if self.kind == "playlist":
            return (
                "Spotify does not share this playlist with apps: it is Spotify's own "
                "editorial playlist or no longer exists."
            )
        return f"Spotify has no {self.kind} with that link; check that it is complete."


class SpotifyForbidden(SpotifyError):
    """Raised when Spotify answers 403: the app may not read this item."""

    def __init__(self, kind: str, spotify_id: str) -> None:
        super().__init__(f"{kind} {spotify_id} forbidden")
        self.kind = kind
        self.spotify_id = spotify_id

    @property
    def user_message(self) -> str:
        if self.kind == "playlist":
            return (
                "Spotify only lets this bot read playlists its own Spotify account owns or "
                "collaborates on: add that account as a collaborator, or send the album or "
                "track links instead."
            )
        return f"Spotify does not let this bot read that {self.kind}."


class SpotifyRateLimited(SpotifyError):
    """Raised when Spotify asks us to wait longer than we are willing to."""

    def __init__(self, retry_after_secs: float) -> None:
        super().__init__(f"rate limited for {retry_after_secs:.0f} s")
        self.retry_after_secs = retry_after_secs

    @property
    def user_message(self) -> str:
        return (
            "Spotify is limiting this bot right now; please try again in "
            f"{format_duration(self.retry_after_secs)}."
        )


class SpotifyUnavailable(SpotifyError):
    """Raised when Spotify cannot be reached or answers with a server error."""

    @property
    def user_message(self) -> str:
        return "Spotify did not answer; please try again in a few minutes."


class MetadataFallbackError(SoundForgeError):
    """Raised when spotdl's own metadata lookup fails after the Web API refused a link."""

    def __init__(self, url: str, reason: str, original: SoundForgeError | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.original = original

    @property
    def user_message(self) -> str:
        if self.original is not None:
            return self.original.user_message
        return "Neither Spotify nor spotdl could read that link."


class StorageError(SoundForgeError):
    """Raised when the database cannot be opened or migrated."""

    @property
    def user_message(self) -> str:
        return (
            "The database could not be opened; check DATABASE_URL (for SQLite, that its "
            f"folder is writable; for PostgreSQL, that the server answers) ({self.detail})."
        )


class DownloadDirUnavailable(SoundForgeError):
    """Raised when DOWNLOAD_DIR cannot be created or written."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    @property
    def user_message(self) -> str:
        return (
            f"The download folder {self.path} cannot be created or written ({self.reason}); "
            "set DOWNLOAD_DIR to a folder this user can write."
        )


class PortUnavailable(SoundForgeError):
    """Raised when the file server cannot listen on HTTP_HOST and HTTP_PORT."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"{host}:{port}: {reason}")
        self.host = host
        self.port = port
        self.reason = reason

    @property
    def user_message(self) -> str:
        return (
            f"The file server cannot listen on {self.host}:{self.port} ({self.reason}); "
            "set HTTP_PORT to a free port (or HTTP_HOST to an address of this machine)."
        )


class QueueUnavailable(SoundForgeError):
    """Raised when the job queue (Redis) cannot be reached."""

    @property
    def user_message(self) -> str:
        return f"Redis could not be reached at REDIS_URL; is redis-server running? ({self.detail})"


class ChatStartFailed(SoundForgeError):
    """Raised when a chat platform refuses to start the bot (a rejected token, no answer).

    The adapter's error is translated where the platform is known, so the sentence names
    the setting to fix.
    """

    def __init__(self, platform: str, sentence: str) -> None:
        super().__init__(f"{platform}: {sentence}")
        self.platform = platform
        self.sentence = sentence

    @property
    def user_message(self) -> str:
        return self.sentence


class DownloadError(SoundForgeError):
    """Raised when a download fails; `permanent` says whether a retry could help."""

    permanent = True
    code = "failed"

    @property
    def user_message(self) -> str:
        return "The download failed."


class SpotdlMissing(DownloadError):
    """Raised when the spotdl command cannot be started."""

    code = "spotdl_missing"

    @property
    def user_message(self) -> str:
        return (
            "spotdl is not installed on the server; the operator should run `soundforge doctor`."
        )


class FfmpegMissing(DownloadError):
    """Raised when spotdl reports that ffmpeg is missing."""

    code = "ffmpeg_missing"

    @property
    def user_message(self) -> str:
        return (
            "ffmpeg is not installed on the server; the operator should run `soundforge doctor`."
        )


class SourceNotFound(DownloadError):
    """Raised when the audio source has no match for the track."""

    code = "not_found"

    @property
    def user_message(self) -> str:
        return "No audio source has this track."


class SourceSignInRequired(DownloadError):
    """Raised when YouTube asks for sign-in ("confirm you're not a bot")."""

    code = "sign_in"

    @property
    def user_message(self) -> str:
        return (
            "YouTube asked the server to sign in; the operator should give yt-dlp cookies "
            "(see the README)."
        )


class SourceRateLimited(DownloadError):
    """Raised when the audio source rate-limits us; retried later."""

    permanent = False
    code = "rate_limited"

    @property
    def user_message(self) -> str:
        return "The audio source is limiting downloads right now; it will be retried."


class DiskFull(DownloadError):
    """Raised when the download folder has no room left."""

    code = "disk_full"

    @property
    def user_message(self) -> str:
        return "The server's disk is full; the operator has to free space."


class DownloadTimeout(DownloadError):
    """Raised when a spotdl run passes its wall-clock or inactivity limit."""

    permanent = False
    code = "timeout"

    @property
    def user_message(self) -> str:
        return "The download took too long and was stopped."


class DownloadFailed(DownloadError):
    """Raised for any other download failure; treated as transient."""

    permanent = False
    code = "failed"

    @property
    def user_message(self) -> str:
        return "The download failed."


def format_duration(secs: float) -> str:
    """Return a short human duration: '45 s', '12 min', '3 h 20 min'."""
    secs = max(0, round(secs))
    if secs < 90:
        return f"{secs} s"
    minutes = round(secs / 60)
    if minutes < 90:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
