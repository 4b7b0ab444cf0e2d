"""MUSIC (Zhao et al., 2018): YouTube videos of solo instrument performances, minutes long. The method treats
each clip as a single source prompted "The sound of <instrument>" and mixes clips of different instruments.

Classes: the class of a file is its parent folder's name (``solo/violin/<video id>.mp4``; ``acoustic_guitar``,
``Acoustic Guitar`` and ``acoustic-guitar`` all give "acoustic guitar"). With ``video_list`` (the dataset's
``MUSIC_solo_videos.json``, ``{"videos": {class: [video ids]}}``) the list gives the class instead, files may
lie anywhere under the media folder, and listed videos without a file count as missing. Files of classes not
asked for (duet folders, MUSIC-21 instruments) are skipped and counted. Videos need ffmpeg; audio files do not.

Recordings are cut into consecutive clips of ``clip_seconds``; a remainder shorter than a clip is dropped.
Splits are by video, so no video gives clips to two splits: within each instrument the videos are ordered by
a hash of the seed and the video id, the first ``test_fraction`` of them go to test, the next
``valid_fraction`` to valid (at least one each when the instrument has three videos or more), the rest to
train. Without a video list, adding videos later can move a few videos to another split; a resumed
preparation converts those again.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from bisep.data.prepare import Job, Plan, class_prompt, index_audio, require_folder, stable_fraction
from bisep.errors import BisepError
from bisep.files import sha256_file

INSTRUMENTS = ("accordion", "acoustic guitar", "cello", "clarinet", "erhu", "flute", "saxophone", "trumpet",
               "tuba", "violin", "xylophone")


def normalise_class(name: str) -> str:
    return " ".join(name.replace("_", " ").replace("-", " ").lower().split())


def plan_music(media_dir: str | Path, seed: int = 0, clip_seconds: float = 10.0, valid_fraction: float = 0.1,
               test_fraction: float = 0.1, test_rounds: int = 10, instruments: tuple[str, ...] = INSTRUMENTS,
               video_list: str | Path | None = None) -> Plan:
    """Find the recordings under ``media_dir`` and plan their cutting into clips (see the module docstring)."""
    if clip_seconds <= 0:
        raise BisepError(f"--clip-seconds must be positive, got {clip_seconds}")
    if valid_fraction < 0 or test_fraction < 0 or valid_fraction + test_fraction >= 1:
        raise BisepError(f"--valid-fraction and --test-fraction must be >= 0 with a sum below 1, got "
                         f"{valid_fraction} and {test_fraction}")
    media_dir = require_folder(media_dir, "media folder")
    wanted = {normalise_class(name) for name in instruments}
    index = index_audio(media_dir)
    skipped: Counter = Counter()
    videos: dict[str, tuple[str, str | None]] = {}
    if video_list is not None:
        for video, instrument in _read_video_list(Path(video_list)).items():
            if instrument in wanted:
                videos[video] = (instrument, str(index[video]) if video in index else None)
            else:
                skipped[instrument] += 1
    else:
        for video, path in index.items():
            instrument = normalise_class(path.parent.name)
            if instrument in wanted:
                videos[video] = (instrument, str(path))
            else:
                skipped[instrument] += 1
    if not videos:
        raise BisepError(f"{media_dir}: no recording of {', '.join(sorted(wanted))} found (expected "
                         "<instrument>/<video id>.<mp4|wav|...> folders, or pass --video-list)")
    by_instrument: dict[str, list[str]] = {}
    for video, (instrument, _) in sorted(videos.items()):
        by_instrument.setdefault(instrument, []).append(video)
    jobs, records, conflicts = [], {}, {}
    for instrument, names in sorted(by_instrument.items()):
        split_of = _assign_splits(names, seed, valid_fraction, test_fraction)
        prompt = class_prompt(instrument)
        for video in names:
            job = Job(split_of[video], video, videos[video][1], video, clip_seconds, cut=True)
            jobs.append(job)
            records[job.key] = {"caption": prompt, "phrases": [prompt], "labels": [instrument], "video": video}
            conflicts[job.key] = frozenset({instrument})
    layout = {"seed": seed, "clip_seconds": clip_seconds, "valid_fraction": valid_fraction,
              "test_fraction": test_fraction, "video_list": video_list is not None}
    compositions = {"valid_2": ("valid", 2, 1), **{f"test_{k}": ("test", k, test_rounds) for k in (2, 3, 4)}}
    return Plan(
        dataset="music", splits=("train", "valid", "test"), jobs=jobs, records=records, conflicts=conflicts,
        compositions=compositions,
        options={**layout, "test_rounds": test_rounds, "instruments": sorted(wanted)}, layout=layout, seed=seed,
        inputs={Path(video_list).name: sha256_file(Path(video_list))} if video_list is not None else {},
        notes={"videos_per_instrument": {name: len(names) for name, names in sorted(by_instrument.items())},
               "skipped_classes": dict(sorted(skipped.items()))},
    )


def _assign_splits(videos: list[str], seed: int, valid_fraction: float, test_fraction: float) -> dict[str, str]:
    order = sorted(videos, key=lambda video: stable_fraction(seed, video))
    count = len(order)
    minimum = 1 if count >= 3 else 0
    tests = max(round(count * test_fraction), minimum if test_fraction > 0 else 0)
    valids = max(round(count * valid_fraction), minimum if valid_fraction > 0 else 0)
    return {video: "test" if rank < tests else "valid" if rank < tests + valids else "train"
            for rank, video in enumerate(order)}


def _read_video_list(path: Path) -> dict[str, str]:
    """Video id -> class of a MUSIC list file (``{"videos": {class: [ids]}}`` or ``{class: [ids]}``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BisepError(f"{path}: video list not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BisepError(f"{path}: not a readable JSON video list ({error})") from None
    classes = data.get("videos", data) if isinstance(data, dict) else None
    if not isinstance(classes, dict) or not all(isinstance(ids, list) for ids in classes.values()):
        raise BisepError(f'{path}: expected {{"videos": {{class: [video ids]}}}}')
    return {str(video): normalise_class(name) for name, ids in classes.items() for video in ids}
