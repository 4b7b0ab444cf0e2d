"""AudioCaps (Kim et al., 2019): YouTube clips of 10 s with human captions, as the method's captioned natural
mixtures. The user downloads the clips; this module matches them to the split CSVs (``train.csv``,
``val.csv``, ``test.csv``: audiocap_id, youtube_id, start_time, caption) and plans their conversion.

Clips with several captions: val and test give five captions per clip, one row each, sharing youtube_id and
start_time. Each clip becomes one record with id ``<youtube_id>_<start>`` (start as in VGGSound file names,
``000030``): ``caption`` is the caption of the lowest audiocap_id, which training prompts and evaluation
queries use; ``captions`` holds all of them in that order; ``phrases`` is the parse of ``caption``; ``labels``
is empty (AudioCaps has no classes). Test compositions keep apart two clips when any of their captions share a
phrase, which is stricter than comparing one caption each.

A clip listed in two splits (AudioCaps has none) stays in the first of test, valid, train.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bisep.data.phrases import parse_caption
from bisep.data.prepare import (Job, Plan, find_source, index_audio, phrase_key, read_csv_rows, require_folder,
                                start_text, youtube_stems)
from bisep.errors import BisepError
from bisep.files import sha256_file

CSV_FILES = {"train": "train.csv", "valid": "val.csv", "test": "test.csv"}
COLUMNS = ("audiocap_id", "youtube_id", "start_time", "caption")
CLIP_SECONDS = 10.0


def plan_audiocaps(csv_dir: str | Path, audio_dir: str | Path, seed: int = 0, test_rounds: int = 1) -> Plan:
    """Read the split CSVs present in ``csv_dir`` and find each clip's file under ``audio_dir``.

    File names tried, in nested folders, with any readable suffix (wav, flac, mp3, ogg, ...) or a video/AAC
    one (m4a, mp4, webm, ... through ffmpeg): ``<youtube_id>_<start>``, ``<youtube_id>_<start>_<end>`` (start
    and end as 30, 000030, 30.0, 30.000 or 30000 ms), each also with a ``Y`` prefix, ``<youtube_id>`` when that
    video gives one clip only, and ``<audiocap_id>`` of any of the clip's captions.
    """
    csv_dir, audio_dir = require_folder(csv_dir, "CSV folder"), require_folder(audio_dir, "audio folder")
    present = {split: csv_dir / name for split, name in CSV_FILES.items() if (csv_dir / name).is_file()}
    if not present:
        raise BisepError(f"{csv_dir}: none of {', '.join(CSV_FILES.values())} is there")
    grouped = {split: _clips_of(path) for split, path in present.items()}
    seen: set[str] = set()
    duplicates = 0
    for split in ("test", "valid", "train"):
        for clip_id in list(grouped.get(split, {})):
            if clip_id in seen:
                del grouped[split][clip_id]
                duplicates += 1
            seen.add(clip_id)
    videos = Counter(clip["youtube_id"] for clips in grouped.values() for clip in clips.values())
    index = index_audio(audio_dir)
    jobs, records, conflicts = [], {}, {}
    for split in CSV_FILES:
        for clip_id, clip in grouped.get(split, {}).items():
            rows = sorted(clip["rows"], key=lambda row: _number_first(row["audiocap_id"]))
            stems = youtube_stems(clip["youtube_id"], clip["start"], CLIP_SECONDS, videos[clip["youtube_id"]] == 1)
            stems += [row["audiocap_id"] for row in rows]
            job = Job(split, clip_id, find_source(index, stems), f"{clip['youtube_id']},{clip['start']:g}",
                      CLIP_SECONDS, start=clip["start"])
            jobs.append(job)
            captions = [row["caption"] for row in rows]
            records[job.key] = {
                "caption": captions[0],
                "captions": captions,
                "phrases": parse_caption(captions[0]),
                "labels": [],
                "youtube_id": clip["youtube_id"],
                "start_time": clip["start"],
                "audiocap_ids": [row["audiocap_id"] for row in rows],
            }
            keys = {phrase_key(phrase) for caption in captions for phrase in parse_caption(caption)}
            conflicts[job.key] = frozenset(keys or {phrase_key(captions[0])})
    compositions = {"valid_2": ("valid", 2, 1), **{f"test_{k}": ("test", k, test_rounds) for k in (2, 3, 4)}}
    return Plan(
        dataset="audiocaps", splits=tuple(CSV_FILES), jobs=jobs, records=records, conflicts=conflicts,
        compositions=compositions, options={"seed": seed, "test_rounds": test_rounds}, layout={}, seed=seed,
        inputs={path.name: sha256_file(path) for path in present.values()},
        notes={"csv_files": sorted(path.name for path in present.values()), "clips_in_two_splits": duplicates},
    )


def _clips_of(path: Path) -> dict[str, dict]:
    """The clips of one split CSV, in file order, each with its rows (one per caption)."""
    clips: dict[str, dict] = {}
    for line, row in read_csv_rows(path, COLUMNS):
        youtube_id, caption = (row["youtube_id"] or "").strip(), (row["caption"] or "").strip()
        try:
            start = float(row["start_time"])
        except (TypeError, ValueError):
            raise BisepError(f"{path}, line {line}: start_time {row['start_time']!r} is not a number") from None
        if not youtube_id or not caption or not (row["audiocap_id"] or "").strip():
            raise BisepError(f"{path}, line {line}: empty audiocap_id, youtube_id or caption")
        clip = clips.setdefault(f"{youtube_id}_{start_text(start)}",
                                {"youtube_id": youtube_id, "start": start, "rows": []})
        clip["rows"].append({"audiocap_id": row["audiocap_id"].strip(), "caption": caption})
    return clips


def _number_first(text: str) -> tuple[int, int, str]:
    return (0, int(text), "") if text.isdigit() else (1, 0, text)
