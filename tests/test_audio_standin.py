"""The audio source stand-in answers as the spotdl wrapper and yt-dlp expect."""

from __future__ import annotations

import aiohttp

from tests.standins.audio import AudioSource

TRACK = "6rqhFgbbKwnb9MLmUQDhG6"


async def test_audio_is_served_whole_and_by_range(audio_source: AudioSource) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(audio_source.audio_url(TRACK)) as whole:
            body = await whole.read()
        async with session.get(
            audio_source.audio_url(TRACK), headers={"Range": "bytes=10-19"}
        ) as part:
            chunk = await part.read()

    assert whole.status == 200 and whole.headers["Content-Type"] == "audio/ogg"
    assert body.startswith(b"OggS")
    assert part.status == 206 and chunk == body[10:20]
    assert audio_source.audio_requests[TRACK] == 2


async def test_lookup_tells_whether_the_source_has_a_track(audio_source: AudioSource) -> None:
    audio_source.set_missing("missingtrack")
    audio_source.set_sign_in("lockedtrack")

    async with aiohttp.ClientSession() as session:
        answers = []
        for track_id in (TRACK, "missingtrack", "lockedtrack"):
            async with session.get(f"{audio_source.base_url}/lookup/{track_id}") as response:
                answers.append(await response.json())

    assert answers[0] == {
        "track_id": TRACK,
        "found": True,
        "url": audio_source.audio_url(TRACK),
        "fault": None,
    }
    assert answers[1] == {"track_id": "missingtrack", "found": False}
    assert answers[2]["found"] is True and answers[2]["fault"] == "sign_in"


async def test_a_flaky_track_fails_its_first_requests_then_serves(
    audio_source: AudioSource,
) -> None:
    audio_source.set_flaky(TRACK, failures=2)
    audio_source.set_rate_limited("busytrack", failures=1)

    async with aiohttp.ClientSession() as session:
        statuses = []
        for url in [audio_source.audio_url(TRACK)] * 3 + [audio_source.audio_url("busytrack")]:
            async with session.get(url) as response:
                statuses.append(response.status)

    assert statuses == [503, 503, 200, 429]
