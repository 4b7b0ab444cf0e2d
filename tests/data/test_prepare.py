"""`bisep data audiocaps|vggsound|music` on small download trees: format, counts, resumability, errors."""

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from bisep.cli import run
from bisep.data.audiocaps import plan_audiocaps
from bisep.data.format import Dataset
from bisep.data.music import plan_music
from bisep.data.prepare import compose, phrase_key, prepare
from bisep.data.vggsound import plan_vggsound
from bisep.errors import BisepError
from conftest import tone

DOWNLOAD_RATE = 44100


def write_clip(path, seconds=0.5, frequency=440.0, silent_seconds=0.0):
    """A stereo 44.1 kHz clip as downloaders leave them (any suffix soundfile writes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mono = tone(frequency, seconds, DOWNLOAD_RATE)
    mono[: int(silent_seconds * DOWNLOAD_RATE)] = 0.0
    soundfile.write(path, np.stack([mono, 0.5 * mono], axis=1), DOWNLOAD_RATE)


def write_csv(path, rows, header=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(header)
        writer.writerows(rows)


def error_lines(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def check_clips(folder):
    """Every clip of the dataset is 16 kHz mono 16-bit; returns the opened dataset."""
    dataset = Dataset.open(folder)
    for clip_id in dataset.clips:
        info = soundfile.info(dataset.audio_path(clip_id))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames / 16000 == pytest.approx(dataset.clips[clip_id]["duration"])
    return dataset


@pytest.fixture
def audiocaps(tmp_path):
    """AudioCaps CSVs and a download folder: several naming patterns, a missing clip and a corrupt file."""
    csv_dir, audio = tmp_path / "csv", tmp_path / "downloads"
    header = ["audiocap_id", "youtube_id", "start_time", "caption"]
    write_csv(csv_dir / "train.csv", [
        [91139, "-0Gj8-vB1q4", 30, "A man speaks while birds chirp in the background"],
        [58146, "r1nicOVtvkQ", 130, "Water runs from a faucet followed by a toilet flushing"],
        [11295, "Zs7rLd1UFtE", 0, "A dog barks and a car passes by"],
        [57339, "AbCdEfGhIjK", 20, "Wind blows"],
        [62031, "CoRrUpTfIlE", 40, "A crowd cheers"],
    ], header)
    write_csv(csv_dir / "val.csv", [
        [200, "VaLiDcLiP01", 10, "A kitten mews loudly"],
        [199, "VaLiDcLiP01", 10, "A cat meows"],
        [201, "VaLiDcLiP02", 0, "An engine idles"],
        [202, "VaLiDcLiP03", 50, "A bell rings"],
    ], header)
    test_rows = [
        ["TeStClIp001", 0, ["A woman speaks", "A woman talks and a baby cries"]],
        ["TeStClIp002", 10, ["A dog barks", "A dog barks repeatedly"]],
        ["TeStClIp003", 20, ["Rain falls on a roof", "Rain pours"]],
        ["WhOlEvIdEo1", 2, ["A train horn blows", "A train passes"]],
    ]
    write_csv(csv_dir / "test.csv", [[300 + 10 * n + k, youtube_id, start, caption]
                                     for n, (youtube_id, start, captions) in enumerate(test_rows)
                                     for k, caption in enumerate(captions)], header)
    write_clip(audio / "train" / "-0Gj8-vB1q4_30.wav")
    write_clip(audio / "train" / "part2" / "Yr1nicOVtvkQ_130.000_140.000.flac", frequency=300)
    write_clip(audio / "train" / "11295.ogg", frequency=500)
    (audio / "train" / "CoRrUpTfIlE_000040.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 10)
    write_clip(audio / "val" / "VaLiDcLiP01_10.wav")
    write_clip(audio / "val" / "VaLiDcLiP02.wav")
    write_clip(audio / "val" / "YVaLiDcLiP03_50_60.wav")
    for youtube_id, start, _ in test_rows[:3]:
        write_clip(audio / "test" / f"{youtube_id}_{start:06d}.mp3")
    write_clip(audio / "test" / "WhOlEvIdEo1.wav", seconds=12.5)
    (audio / "test" / "._WhOlEvIdEo1.wav").write_bytes(b"macOS resource fork")
    return csv_dir, audio


def test_audiocaps_dataset_counts_and_compositions(audiocaps, tmp_path):
    csv_dir, audio = audiocaps
    report = prepare(plan_audiocaps(csv_dir, audio), tmp_path / "out", jobs=2, progress=False)
    assert report["sources"] == {"listed": 12, "found": 11, "missing": 1, "corrupt": 1, "unusable": 0,
                                 "converted": 10, "kept": 0}
    assert report["missing"] == ["AbCdEfGhIjK,20"]
    assert report["corrupt"][0]["id"] == "CoRrUpTfIlE_000040"
    dataset = check_clips(tmp_path / "out")
    assert dataset.split("train") == ["-0Gj8-vB1q4_000030", "r1nicOVtvkQ_000130", "Zs7rLd1UFtE_000000"]
    assert len(dataset.split("valid")) == 3 and len(dataset.split("test")) == 4
    train = dataset.clips["-0Gj8-vB1q4_000030"]
    assert train["phrases"] == ["a man speaks", "birds chirp"] and train["labels"] == []
    assert train["audio"] == "audio/train/-0Gj8-vB1q4_000030.wav" and train["duration"] == 0.5
    several = dataset.clips["VaLiDcLiP01_000010"]
    assert several["caption"] == "A cat meows" and several["captions"] == ["A cat meows", "A kitten mews loudly"]
    assert several["audiocap_ids"] == ["199", "200"]
    assert dataset.clips["WhOlEvIdEo1_000002"]["duration"] == 10.0  # a whole video, cut at its start time
    assert report["phrases_per_caption"] == {1: 7, 2: 3}
    pairs = dataset.compositions("test_2")
    assert len(pairs) == 4
    for _, (a, b) in pairs:
        phrases_a = {phrase_key(p) for p in dataset.clips[a]["phrases"]}
        assert a != b and not phrases_a & {phrase_key(p) for p in dataset.clips[b]["phrases"]}
    assert {a for _, (a, _) in pairs} == set(dataset.split("test"))
    assert json.loads((tmp_path / "out" / "report.json").read_text())["sources"]["corrupt"] == 1
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["generator"] == "bisep data audiocaps" and set(manifest["inputs"]) == {
        "train.csv", "val.csv", "test.csv"}


def test_compositions_never_pair_conflicting_clips():
    conflicts = {"a": frozenset({"dog"}), "b": frozenset({"dog", "man"}), "c": frozenset({"rain"}),
                 "d": frozenset({"man"})}
    rows = compose(list(conflicts), conflicts, 2, 5, np.random.default_rng(0))
    assert len(rows) == 20
    assert all(not conflicts[a] & conflicts[b] for a, b in rows)
    assert compose(["a", "b"], conflicts, 2, 1, np.random.default_rng(0)) == []


def test_audiocaps_resumes_and_picks_up_new_downloads(audiocaps, capsys):
    csv_dir, audio = audiocaps
    out = audio / "prepared"  # inside the download folder: its clips must not be taken for downloads
    arguments = ["data", "audiocaps", "--csv-dir", str(csv_dir), "--audio-dir", str(audio), "--out", str(out),
                 "--jobs", "1"]
    assert run(arguments) == 0
    assert "10 converted now, 0 kept" in capsys.readouterr().out
    annotations = (out / "annotations.json").read_bytes()

    assert run(arguments) == 0
    assert "0 converted now, 10 kept from an earlier run" in capsys.readouterr().out
    assert (out / "annotations.json").read_bytes() == annotations

    # an interrupted run: no annotations yet, the journal's last line cut short, a damaged and a new clip
    (out / "annotations.json").unlink()
    with open(out / ".bisep-prepare" / "converted.jsonl", "a") as journal:
        journal.write('{"key": "train/')
    (out / "audio" / "valid" / "VaLiDcLiP02_000000.wav").write_bytes(b"half a file")
    write_clip(audio / "AbCdEfGhIjK_20.wav")
    assert run(arguments) == 0
    output = capsys.readouterr().out
    assert "2 converted now, 9 kept" in output and "0 missing" in output
    dataset = check_clips(out)
    assert "AbCdEfGhIjK_000020" in dataset.split("train")


def test_list_missing_prints_what_to_fetch_without_writing(audiocaps, tmp_path, capsys):
    csv_dir, audio = audiocaps
    out = tmp_path / "never"
    status = run(["data", "audiocaps", "--csv-dir", str(csv_dir), "--audio-dir", str(audio), "--out", str(out),
                  "--list-missing"])
    captured = capsys.readouterr()
    assert status == 0 and captured.out.splitlines() == ["AbCdEfGhIjK,20"]
    assert "1 of 12 audiocaps sources still to fetch" in captured.err
    assert not out.exists()


@pytest.mark.parametrize("problem, expected", [
    ("no_csv_dir", "CSV folder not found"),
    ("no_audio_dir", "audio folder not found"),
    ("missing_column", "missing column(s) caption"),
    ("bad_start", "line 2: start_time 'thirty' is not a number"),
    ("foreign_output", "exists and is not empty (pass --overwrite"),
    ("no_out", "--out is required"),
])
def test_audiocaps_bad_input_gives_one_line_and_exit_2(problem, expected, audiocaps, tmp_path, capsys):
    csv_dir, audio = audiocaps
    out = tmp_path / "out"
    if problem == "no_csv_dir":
        csv_dir = tmp_path / "nope"
    elif problem == "no_audio_dir":
        audio = tmp_path / "nope"
    elif problem == "missing_column":
        write_csv(csv_dir / "train.csv", [[1, "x", 0]], ["audiocap_id", "youtube_id", "start_time"])
    elif problem == "bad_start":
        write_csv(csv_dir / "train.csv", [[1, "x", "thirty", "A dog barks"]],
                  ["audiocap_id", "youtube_id", "start_time", "caption"])
    elif problem == "foreign_output":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    arguments = ["data", "audiocaps", "--csv-dir", str(csv_dir), "--audio-dir", str(audio), "--jobs", "1"]
    assert run(arguments + ([] if problem == "no_out" else ["--out", str(out)])) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("bisep: error:") and expected in lines[0]
    if problem == "foreign_output":
        assert run(arguments + ["--out", str(out), "--overwrite"]) == 0
        assert not (out / "notes.txt").exists()


def test_nothing_found_is_an_error(audiocaps, tmp_path):
    csv_dir, _ = audiocaps
    (tmp_path / "empty").mkdir()
    with pytest.raises(BisepError, match="no audio file found for any of the 12 audiocaps sources"):
        prepare(plan_audiocaps(csv_dir, tmp_path / "empty"), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


VGGSOUND_ROWS = [
    ["-9SVhgdS5mE", 30, "dog barking", "train"],
    ["a1B2c3D4e5F", 0, "dog barking", "train"],
    ["g7H8i9J0k1L", 10, "playing violin, fiddle", "train"],
    ["m2N3o4P5q6R", 40, "playing violin, fiddle", "train"],
    ["s7T8u9V0w1X", 20, "rain falling", "train"],
    ["y2Z3a4B5c6D", 60, "rain falling", "train"],
    ["e7F8g9H0i1J", 0, "dog barking", "test"],
    ["k2L3m4N5o6P", 90, "playing violin, fiddle", "test"],
    ["q7R8s9T0u1V", 5, "rain falling", "test"],
    ["w2X3y4Z5a6B", 15, "rain falling", "test"],
    ["nOtDoWnLoAd", 0, "dog barking", "test"],
]


@pytest.fixture
def vggsound(tmp_path):
    csv_path, audio = tmp_path / "vggsound.csv", tmp_path / "vggsound"
    write_csv(csv_path, VGGSOUND_ROWS)
    suffixes = [".wav", ".flac", ".mp3", ".ogg"]
    for number, (youtube_id, start, _, split) in enumerate(VGGSOUND_ROWS[:-1]):
        write_clip(audio / split / f"{youtube_id}_{start:06d}{suffixes[number % 4]}", frequency=200 + 50 * number)
    return csv_path, audio


def test_vggsound_prompts_splits_and_class_compositions(vggsound, tmp_path):
    csv_path, audio = vggsound
    report = prepare(plan_vggsound(csv_path, audio, valid_fraction=0.5, test_rounds=3), tmp_path / "out",
                     progress=False)
    assert report["sources"]["found"] == 10 and report["missing"] == ["nOtDoWnLoAd,0"]
    dataset = check_clips(tmp_path / "out")
    official_train = {f"{row[0]}_{row[1]:06d}" for row in VGGSOUND_ROWS if row[3] == "train"}
    train, valid = dataset.split("train"), dataset.split("valid")
    assert valid and train and set(train) | set(valid) == official_train and not set(train) & set(valid)
    record = dataset.clips["g7H8i9J0k1L_000010"]
    assert record["caption"] == "The sound of playing violin, fiddle"
    assert record["phrases"] == [record["caption"]] and record["labels"] == ["playing violin, fiddle"]
    test_2 = dataset.compositions("test_2")
    assert len(test_2) == 12
    for name in ("test_2", "test_3"):
        for _, members in dataset.compositions(name):
            assert len({dataset.clips[clip_id]["labels"][0] for clip_id in members}) == len(members)
    again = plan_vggsound(csv_path, audio, valid_fraction=0.5)
    assert sorted(job.name for job in again.jobs if job.split == "valid") == sorted(valid)


def test_vggsound_refuses_other_layout_and_bad_rows(vggsound, tmp_path, capsys):
    csv_path, audio = vggsound
    arguments = ["data", "vggsound", "--csv", str(csv_path), "--audio-dir", str(audio), "--out",
                 str(tmp_path / "out"), "--jobs", "1"]
    assert run(arguments) == 0
    capsys.readouterr()
    assert run(arguments + ["--seed", "1"]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and "prepared with other options (seed 0 -> 1)" in lines[0]
    write_csv(csv_path, [["youtube_id", "start", "label", "split"], *VGGSOUND_ROWS, ["z", 0, "dog", "val"]])
    assert run(arguments) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and "line 13: split 'val' is not train or test" in lines[0]


def music_tree(root):
    """Three solo instruments (folder names as found in the wild), a duet folder and a silent recording."""
    names = {"violin": "violin", "acoustic_guitar": "acoustic guitar", "Cello": "cello"}
    for number, folder in enumerate(sorted(names)):
        for video in range(3):
            write_clip(root / "solo" / folder / f"{folder[:2]}Video{video:03d}.wav", seconds=2.5,
                       frequency=200 + 100 * number)
    write_clip(root / "solo" / "violin" / "quietStart1.flac", seconds=3.2, silent_seconds=1.1)
    write_clip(root / "solo" / "violin" / "allSilent01.wav", seconds=2.0, silent_seconds=2.0)
    write_clip(root / "duet" / "acoustic_guitar violin" / "duetVideo01.wav", seconds=2.5)
    return names


def test_music_cuts_recordings_and_splits_by_video(tmp_path):
    names = music_tree(tmp_path / "MUSIC")
    plan = plan_music(tmp_path / "MUSIC", clip_seconds=1.0, test_rounds=2)
    report = prepare(plan, tmp_path / "out", progress=False)
    assert report["notes"]["skipped_classes"] == {"acoustic guitar violin": 1}
    assert report["sources"]["unusable"] == 1 and report["silent_clips_dropped"] == 1
    dataset = check_clips(tmp_path / "out")
    video_split = {}
    for split in ("train", "valid", "test"):
        for clip_id in dataset.split(split):
            record = dataset.clips[clip_id]
            assert video_split.setdefault(record["video"], split) == split
            assert record["duration"] == 1.0 and record["caption"] == f"The sound of {record['labels'][0]}"
    assert dataset.clips["viVideo000_0001"]["start"] == 1.0
    assert [clip for clip in dataset.clips if clip.startswith("quietStart1")] == ["quietStart1_0001",
                                                                                 "quietStart1_0002"]
    assert {plan.records[job.key]["labels"][0] for job in plan.jobs if job.split == "test"} == set(names.values())
    for _, members in dataset.compositions("test_2") + dataset.compositions("valid_2"):
        assert len({dataset.clips[clip_id]["labels"][0] for clip_id in members}) == 2
    again = prepare(plan_music(tmp_path / "MUSIC", clip_seconds=1.0, test_rounds=2), tmp_path / "out",
                    progress=False)
    assert again["sources"]["converted"] == 0 and again["sources"]["kept"] == 10


def test_music_video_list_gives_classes_and_missing(tmp_path, capsys):
    music_tree(tmp_path / "MUSIC")
    video_list = tmp_path / "MUSIC_solo_videos.json"
    video_list.write_text(json.dumps({"videos": {"violin": ["viVideo000", "viVideo001", "notFetched1"],
                                                 "acoustic_guitar": ["acVideo000"]}}))
    status = run(["data", "music", "--media-dir", str(tmp_path / "MUSIC"), "--video-list", str(video_list),
                  "--list-missing"])
    assert status == 0 and capsys.readouterr().out.splitlines() == ["notFetched1"]
    assert run(["data", "music", "--media-dir", str(tmp_path / "MUSIC"), "--list-missing"]) == 2
    assert "needs --video-list" in error_lines(capsys)[0]


def fake_ffmpeg(folder):
    """An `ffmpeg` that decodes any file to 2.5 s of tone (f32le on stdout) and fails on files starting BAD, so
    the video path is tested where no real ffmpeg is installed."""
    folder.mkdir()
    script = folder / "ffmpeg"
    script.write_text(f"""#!{sys.executable}
import sys
import numpy as np
args = sys.argv[1:]
with open(args[args.index("-i") + 1], "rb") as source:
    if source.read(3) == b"BAD":
        sys.exit("source.mp4: Invalid data found when processing input")
rate = int(args[args.index("-ar") + 1])
time = np.arange(int(2.5 * rate)) / rate
sys.stdout.buffer.write((0.5 * np.sin(2 * np.pi * 440 * time)).astype(np.float32).tobytes())
""")
    script.chmod(0o755)


def test_music_videos_are_decoded_with_ffmpeg(tmp_path, monkeypatch):
    fake_ffmpeg(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    for video in ("clVideo000", "clVideo001", "clVideo002"):
        (tmp_path / "MUSIC" / "clarinet").mkdir(parents=True, exist_ok=True)
        (tmp_path / "MUSIC" / "clarinet" / f"{video}.mp4").write_bytes(b"a video")
    (tmp_path / "MUSIC" / "clarinet" / "brokenVideo.webm").write_bytes(b"BAD video")
    report = prepare(plan_music(tmp_path / "MUSIC", clip_seconds=1.0), tmp_path / "out", progress=False)
    assert report["sources"]["converted"] == 3 and report["corrupt"][0]["id"] == "brokenVideo"
    assert "Invalid data found" in report["corrupt"][0]["error"]
    dataset = check_clips(tmp_path / "out")
    assert len(dataset.clips) == 6


def test_videos_without_ffmpeg_give_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "MUSIC" / "tuba").mkdir(parents=True)
    (tmp_path / "MUSIC" / "tuba" / "tuVideo000.mp4").write_bytes(b"a video")
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert run(["data", "music", "--media-dir", str(tmp_path / "MUSIC"), "--out", str(tmp_path / "out")]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and "needs ffmpeg: install it" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_music_from_a_real_video(tmp_path):
    video = tmp_path / "MUSIC" / "solo" / "flute" / "flVideo000.mp4"
    video.parent.mkdir(parents=True)
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=660:duration=2.5:sample_rate=44100",
                    "-f", "lavfi", "-i", "color=size=32x32:duration=2.5", "-ac", "2", "-shortest", str(video)],
                   check=True)
    report = prepare(plan_music(tmp_path / "MUSIC", clip_seconds=1.0), tmp_path / "out", progress=False)
    assert report["sources"]["converted"] == 1
    dataset = check_clips(tmp_path / "out")
    assert sorted(dataset.clips) == ["flVideo000_0000", "flVideo000_0001"]
