"""The texts a person reads in the chat: what was found, progress, final states, status.

Pure functions of plain data, shared by every platform; plain text without markup, so
no platform needs escaping.
"""

from __future__ import annotations

from collections.abc import Sequence

from config.settings import Quality
from core.errors import format_duration
from core.service import JobView, RequestView
from core.types import JobStatus, LinkKind, MetadataSource, TrackList

BAR_WIDTH = 10
BAR_FULL = "█"
BAR_EMPTY = "░"

QUALITY_LABELS: dict[Quality, str] = {
    Quality.LOSSLESS: "Lossless (FLAC)",
    Quality.HIGH: "High (320 kbit/s)",
    Quality.MEDIUM: "Medium (192 kbit/s)",
    Quality.LOW: "Low (128 kbit/s)",
}

_STATUS_WORDS: dict[JobStatus, str] = {
    JobStatus.QUEUED: "waiting",
    JobStatus.DOWNLOADING: "downloading",
    JobStatus.COMPLETED: "done",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}

HELP_TEXT = (
    "I turn Spotify links into tagged audio files.\n"
    "\n"
    "• Send me a track, album, playlist or artist link (in a group: /get <link>).\n"
    "• I answer with what I found and keep that one reply up to date, then send the audio.\n"
    "• /quality picks the audio quality for your next requests.\n"
    "• /status shows your running and recent requests.\n"
    "• /cancel stops your waiting and running downloads.\n"
    "\n"
    "Files too large for this chat come as a download link that expires."
)


def progress_bar(percent: int, width: int = BAR_WIDTH) -> str:
    """A text bar such as `████░░░░░░` for 0-100 percent."""
    percent = max(0, min(100, percent))
    full = round(percent * width / 100)
    return BAR_FULL * full + BAR_EMPTY * (width - full)


def length(duration_ms: int) -> str:
    """A track length as `m:ss` (or `h:mm:ss`)."""
    secs = max(0, round(duration_ms / 1000))
    hours, rest = divmod(secs, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def track_name(artists: Sequence[str], title: str) -> str:
    """`Artist, Artist – Title`."""
    return f"{', '.join(artists) or 'Unknown artist'} – {title}"


def render_found(tracklist: TrackList, quality: Quality) -> str:
    """The first reply: what the link holds, what was skipped, and the quality asked for."""
    lines: list[str] = []
    if tracklist.link.kind is LinkKind.TRACK and len(tracklist.tracks) == 1:
        track = tracklist.tracks[0]
        lines.append(f"Found: {track_name(track.artists, track.title)}")
        lines.append(f"Album: {track.album} · {length(track.duration_ms)}")
    else:
        kind = tracklist.link.kind.value
        count = len(tracklist.tracks)
        owner = f" by {tracklist.owner}" if tracklist.owner else ""
        lines.append(f"Found the {kind} {tracklist.name}{owner}: {_tracks(count)}")
    if tracklist.skipped:
        reasons = ", ".join(
            f"{count} {reason.value}" for reason, count in sorted(tracklist.skipped.items())
        )
        lines.append(f"Skipped {tracklist.skipped_total}: {reasons}.")
    if tracklist.capped_at is not None:
        lines.append(
            f"Only the first {tracklist.capped_at} of {tracklist.total_available} tracks "
            "are taken (the limit for one request)."
        )
    if tracklist.source is MetadataSource.SPOTDL:
        lines.append("Spotify's Web API refused this link, so spotdl read it instead.")
    lines.append(f"Quality: {QUALITY_LABELS[quality]}")
    return "\n".join(lines)


def render_progress(view: RequestView) -> str:
    """The reply while the request runs, and its final state once every job is final."""
    if view.status == "cancelled":
        return _render_cancelled(view)
    if len(view.jobs) == 1 and view.kind == LinkKind.TRACK.value:
        return _render_track(view, view.jobs[0])
    return _render_collection(view)


def _render_cancelled(view: RequestView) -> str:
    if len(view.jobs) == 1 and view.kind == LinkKind.TRACK.value:
        job = view.jobs[0]
        return f"{track_name(job.artists, job.title)}\nCancelled."
    done = view.count(JobStatus.COMPLETED)
    return f"{view.name or view.kind.capitalize()}\n{done}/{view.total} done\nCancelled."


def _render_track(view: RequestView, job: JobView) -> str:
    name = track_name(job.artists, job.title)
    if job.status is JobStatus.COMPLETED:
        return f"{name}\nDone ✓ ({_quality_label(view.quality)})"
    if job.status is JobStatus.FAILED:
        return f"{name}\nFailed: {job.error or 'the download failed.'}"
    if job.status is JobStatus.CANCELLED:
        return f"{name}\nCancelled."
    if job.status is JobStatus.QUEUED:
        stage = job.message if job.message.startswith("retrying") else "waiting in the queue"
        return f"{name}\n{stage[:1].upper()}{stage[1:]}"
    stage = _stage(job)
    return f"{name}\n{stage}\n{progress_bar(job.progress)} {job.progress}%"


def _render_collection(view: RequestView) -> str:
    done = view.count(JobStatus.COMPLETED)
    failed = view.count(JobStatus.FAILED)
    cancelled = view.count(JobStatus.CANCELLED)
    counts = f"{done}/{view.total} done"
    if failed:
        counts += f", {failed} failed"
    if cancelled:
        counts += f", {cancelled} cancelled"
    lines = [f"{view.name or view.kind.capitalize()}", counts]
    if view.finished:
        if cancelled and not done and not failed:
            lines.append("Cancelled.")
        else:
            lines.append("Finished ✓" if not failed and not cancelled else "Finished.")
        lines.extend(
            f"✗ {track_name(job.artists, job.title)}: {job.error}"
            for job in view.jobs
            if job.status is JobStatus.FAILED and job.error
        )
        return "\n".join(lines)
    running = [job for job in view.jobs if job.status is JobStatus.DOWNLOADING]
    for job in running[:3]:
        lines.append(
            f"Now: {track_name(job.artists, job.title)} {progress_bar(job.progress, 5)} "
            f"{job.progress}%"
        )
    if not running:
        lines.append("Waiting in the queue")
    return "\n".join(lines)


def _stage(job: JobView) -> str:
    message = job.message.strip()
    if not message or message in ("starting", "downloading"):
        return "Downloading"
    return message[:1].upper() + message[1:]


def _quality_label(quality: str) -> str:
    try:
        return QUALITY_LABELS[Quality(quality)]
    except ValueError:
        return quality


def _tracks(count: int) -> str:
    return f"{count} track" if count == 1 else f"{count} tracks"


def render_status(views: Sequence[RequestView], queue_ahead: dict[int, int]) -> str:
    """`/status`: the person's running requests first, then the recent finished ones."""
    if not views:
        return "You have no requests yet: send me a Spotify link."
    running = [view for view in views if view.status == "open" and not view.finished]
    others = [view for view in views if view not in running]
    lines: list[str] = []
    if running:
        lines.append("Running:")
        for view in running:
            ahead = queue_ahead.get(view.request_id, 0)
            wait = f", {ahead} ahead in the queue" if ahead else ""
            lines.append(f"• {_summary(view)}{wait}")
    if others:
        lines.append("Recent:")
        lines.extend(f"• {_summary(view)}" for view in others)
    return "\n".join(lines)


def _summary(view: RequestView) -> str:
    if len(view.jobs) == 1 and view.kind == LinkKind.TRACK.value:
        job = view.jobs[0]
        state = _STATUS_WORDS[job.status]
        if job.status is JobStatus.DOWNLOADING:
            state += f" {job.progress}%"
        if view.status == "cancelled" and not job.status.final:
            state = "cancelled"
        return f"{track_name(job.artists, job.title)}: {state}"
    done = view.count(JobStatus.COMPLETED)
    failed = view.count(JobStatus.FAILED)
    text = f"{view.name or view.kind}: {done}/{view.total} done"
    if failed:
        text += f", {failed} failed"
    if view.status == "cancelled":
        text += ", cancelled"
    return text


def render_link_delivery(name: str, url: str, size_bytes: int, valid_secs: float) -> str:
    """The message that hands over a file too large for the chat."""
    size_mb = size_bytes / (1024 * 1024)
    return (
        f"{name} is {size_mb:.1f} MB, too large for this chat. Download it here "
        f"(the link works for {format_duration(valid_secs)}):\n{url}"
    )


def render_quality_prompt(current: Quality) -> str:
    """The text above the four quality buttons."""
    return f"Audio quality for your next requests (now: {QUALITY_LABELS[current]}):"


def render_quality_set(quality: Quality) -> str:
    """The answer once a quality was chosen."""
    return f"Quality set to {QUALITY_LABELS[quality]}. It applies to your next requests."


def render_cancelled(count: int) -> str:
    """`/cancel`'s answer."""
    if count == 0:
        return "You have nothing waiting or running to cancel."
    return f"Cancelled {count} download{'s' if count != 1 else ''}."
