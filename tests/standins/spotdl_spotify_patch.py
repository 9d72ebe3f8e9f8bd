"""Points spotdl's own Spotify lookup at the Spotify stand-in's `/free/v1/` API.

spotdl 4.6 builds its Spotify client in `spotdl.utils.spotify.SpotifyClient.init`, by default a
SpotipyFree client that talks to Spotify's web player. `patch_spotdl_spotify` replaces that
method, in the calling process, with one that builds a plain `spotipy.Spotify` whose API
prefix is the stand-in's `/free/v1/` and whose client-credentials token comes from the
stand-in's `/api/token`. Call it before spotdl's console entry point runs.
"""

from __future__ import annotations

from typing import Any

from tests.standins.spotify import FREE_CLIENT_ID, FREE_CLIENT_SECRET


def patch_spotdl_spotify(base_url: str) -> None:
    """Make spotdl's Spotify client in this process read from the stand-in at `base_url`."""
    from spotdl.utils import spotify as spotdl_spotify
    from spotipy.cache_handler import MemoryCacheHandler
    from spotipy.oauth2 import SpotifyClientCredentials

    root = base_url.rstrip("/")

    class StandinCredentials(SpotifyClientCredentials):  # type: ignore[misc]
        """Client credentials asked of the stand-in's accounts service."""

        OAUTH_TOKEN_URL = f"{root}/api/token"

    def init(cls: type[Any], client_id: str = "", client_secret: str = "", **options: Any) -> Any:
        if cls._instance is not None:
            raise spotdl_spotify.SpotifyError("A spotify client has already been initialized")
        credentials = StandinCredentials(
            client_id=FREE_CLIENT_ID,
            client_secret=FREE_CLIENT_SECRET,
            cache_handler=MemoryCacheHandler(),
        )
        client = spotdl_spotify._OfficialSpotifyClient(
            auth_manager=credentials, status_forcelist=(429, 500, 502, 503, 504)
        )
        client.prefix = f"{root}/free/v1/"
        # What spotdl's own init sets on the client it builds.
        client.user_auth = False
        client.no_cache = True
        client.max_retries = int(options.get("max_retries") or 3)
        client.use_cache_file = False
        cls._instance = client
        cls._use_official_api = True
        return client

    spotdl_spotify.SpotifyClient.init = classmethod(init)  # type: ignore[method-assign,assignment]
