"""The download folder layout: one folder per track, one safe file name per quality."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.settings import Quality
from storage.layout import MAX_NAME_BYTES, final_path

TRACK_ID = "4uLU6hMCjMI75M1A2tKUQC"


def test_file_lives_in_the_track_folder_named_artist_dash_title(tmp_path: Path) -> None:
    path = final_path(tmp_path, TRACK_ID, "Rick Astley", "Never Gonna Give You Up", Quality.HIGH)

    assert path == tmp_path / TRACK_ID / "Rick Astley - Never Gonna Give You Up.mp3"


@pytest.mark.parametrize(
    ("quality", "name"),
    [
        (Quality.LOSSLESS, "A - B.flac"),
        (Quality.HIGH, "A - B.mp3"),
        (Quality.MEDIUM, "A - B.192k.mp3"),
        (Quality.LOW, "A - B.128k.mp3"),
    ],
)
def test_each_quality_has_its_own_ending(tmp_path: Path, quality: Quality, name: str) -> None:
    assert final_path(tmp_path, TRACK_ID, "A", "B", quality).name == name


def test_separators_and_control_characters_never_reach_the_name(tmp_path: Path) -> None:
    path = final_path(tmp_path, TRACK_ID, "AC/DC", "Back\\in\x00 Black\n\x1b[31m", Quality.HIGH)

    assert path.parent == tmp_path / TRACK_ID
    assert path.name == "AC-DC - Back-in Black [31m.mp3"


def test_a_name_made_of_dots_cannot_climb_out_of_the_folder(tmp_path: Path) -> None:
    path = final_path(tmp_path, TRACK_ID, "..", "../../etc/passwd", Quality.HIGH)

    assert path.parent == tmp_path / TRACK_ID
    assert not path.name.startswith(".")


def test_an_empty_name_falls_back_to_the_track_id(tmp_path: Path) -> None:
    assert final_path(tmp_path, TRACK_ID, " ", "\x00", Quality.LOW).name == f"{TRACK_ID}.128k.mp3"


def test_a_missing_artist_leaves_just_the_title(tmp_path: Path) -> None:
    assert final_path(tmp_path, TRACK_ID, "", "Intro", Quality.HIGH).name == "Intro.mp3"


def test_a_title_ending_like_a_bitrate_does_not_meet_another_quality(tmp_path: Path) -> None:
    high = final_path(tmp_path, TRACK_ID, "A", "B.192k", Quality.HIGH)
    medium = final_path(tmp_path, TRACK_ID, "A", "B", Quality.MEDIUM)

    assert high != medium


def test_long_names_are_cut_to_the_byte_limit_on_a_character_boundary(tmp_path: Path) -> None:
    path = final_path(tmp_path, TRACK_ID, "Ünïcödé " * 40, "日本語のタイトル" * 20, Quality.MEDIUM)

    assert len(path.name.encode("utf-8")) <= MAX_NAME_BYTES
    assert path.name.endswith(".192k.mp3")
    assert path.name.startswith("Ünïcödé Ünïcödé")


def test_a_track_id_that_is_not_an_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a Spotify track id"):
        final_path(tmp_path, "../elsewhere", "A", "B", Quality.HIGH)


def test_a_track_folder_symlinked_elsewhere_is_refused(tmp_path: Path) -> None:
    downloads, outside = tmp_path / "downloads", tmp_path / "outside"
    downloads.mkdir()
    outside.mkdir()
    (downloads / TRACK_ID).symlink_to(outside)

    with pytest.raises(ValueError, match="outside the download folder"):
        final_path(downloads, TRACK_ID, "A", "B", Quality.HIGH)


names = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)


@given(artist=names, title=names)
def test_any_name_stays_inside_the_folder_and_is_one_safe_component(
    artist: str, title: str
) -> None:
    root = Path("/srv/soundforge/downloads")
    for quality in Quality:
        path = final_path(root, TRACK_ID, artist, title, quality)
        assert path.parent == root / TRACK_ID
        name = path.name
        assert "/" not in name and "\\" not in name and "\x00" not in name
        assert not name.startswith(".")
        assert not any(unicodedata.category(char) == "Cc" for char in name)
        assert len(name.encode("utf-8")) <= MAX_NAME_BYTES


@given(first=st.tuples(names, names), second=st.tuples(names, names))
def test_two_qualities_never_share_a_path(first: tuple[str, str], second: tuple[str, str]) -> None:
    root = Path("/srv/soundforge/downloads")
    for quality_a in Quality:
        for quality_b in Quality:
            if quality_a is quality_b:
                continue
            path_a = final_path(root, TRACK_ID, *first, quality_a)
            path_b = final_path(root, TRACK_ID, *second, quality_b)
            assert str(path_a).lower() != str(path_b).lower()


def test_names_keep_to_characters_every_common_file_system_accepts(tmp_path: Path) -> None:
    path = final_path(tmp_path, TRACK_ID, "AC|DC", 'Square-Root: "Part" <2>? *', Quality.HIGH)

    assert path.name == "AC-DC - Square-Root - 'Part' 2.mp3"
    assert not set(path.name) & set(':?*"<>|')
