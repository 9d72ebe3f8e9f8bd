"""The cover shown beside an audio message: the picture embedded in the file, made small.

Telegram takes a JPEG of at most 320 px a side and 200 kB as an audio thumbnail.
"""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

import mutagen
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3
from mutagen.mp4 import MP4
from PIL import Image, UnidentifiedImageError

_log = logging.getLogger(__name__)

MAX_SIDE_PX = 320
MAX_BYTES = 200 * 1000
# JPEG qualities tried in turn until the thumbnail fits MAX_BYTES.
_QUALITIES = (85, 70, 55, 40)


def embedded_cover(path: Path) -> bytes | None:
    """The first picture embedded in an audio file (ID3, FLAC, MP4 or Ogg), or None."""
    try:
        audio = mutagen.File(path)
    except (mutagen.MutagenError, OSError):
        audio = None
    if audio is None or audio.tags is None:
        # An ID3 tag can be read on its own when the audio frames are not understood.
        try:
            tags = ID3(path)
        except (mutagen.MutagenError, OSError):
            _log.warning("Could not read the tags of %s", path.name)
            return None
        frames = tags.getall("APIC")
        return frames[0].data if frames else None
    if isinstance(audio, FLAC):
        return audio.pictures[0].data if audio.pictures else None
    if isinstance(audio, MP4):
        covers = audio.tags.get("covr") or []
        return bytes(covers[0]) if covers else None
    if isinstance(audio.tags, ID3):
        frames = audio.tags.getall("APIC")
        return frames[0].data if frames else None
    # Vorbis comments (Ogg, Opus) keep the picture base64-encoded.
    blocks = audio.tags.get("metadata_block_picture") or []
    if blocks:
        try:
            return Picture(base64.b64decode(blocks[0])).data
        except (ValueError, mutagen.MutagenError):
            return None
    return None


def make_thumbnail(image_bytes: bytes) -> bytes | None:
    """A JPEG of at most MAX_SIDE_PX a side and MAX_BYTES, or None when the image is unreadable."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as source:
            image = source.convert("RGB")
            image.thumbnail((MAX_SIDE_PX, MAX_SIDE_PX))
            for quality in _QUALITIES:
                out = io.BytesIO()
                image.save(out, format="JPEG", quality=quality, optimize=True)
                if out.tell() <= MAX_BYTES:
                    return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError):
        _log.warning("The embedded cover is not an image Pillow can read")
        return None
    return None


def cover_thumbnail(path: Path) -> bytes | None:
    """The thumbnail for an audio file's embedded cover, or None when it has none."""
    cover = embedded_cover(path)
    return make_thumbnail(cover) if cover else None
