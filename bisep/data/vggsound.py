"""VGGSound (Chen et al., 2020): 10 s YouTube clips with one class label each. The method treats them as
single-source clips prompted "The sound of <label>" and builds mixtures from clips of different classes.

The list is ``vggsound.csv``, without a header: youtube_id, start_seconds, label, split (train or test); a
first line that is not a data row is taken for a header. Splits: the official test split, and a ``valid`` split
carved out of train by a hash of the seed and the clip id, so a clip's split never depends on which other
clips were downloaded (a resumed preparation keeps every clip where it was).
"""

from __future__ import annotations

from pathlib import Path

from bisep.data.prepare import (Job, Plan, class_prompt, find_source, index_audio, read_csv_rows, require_folder,
                                stable_fraction, start_text, youtube_stems)
from bisep.errors import BisepError
from bisep.files import sha256_file

CLIP_SECONDS = 10.0
OFFICIAL_SPLITS = ("train", "test")


def plan_vggsound(csv_path: str | Path, audio_dir: str | Path, seed: int = 0, valid_fraction: float = 0.05,
                  test_rounds: int = 10) -> Plan:
    """Read the VGGSound list and find each clip's file under ``audio_dir``: ``<youtube_id>_<start>`` with the
    start as 000030 (the usual VGGSound name), 30, 30.0, 30.000 or 30000 ms, optionally ``_<end>`` and a ``Y``
    prefix, or ``<youtube_id>`` alone when the video gives one clip; any readable or video suffix, in nested
    folders. ``test_rounds``: passes over the test split per test composition list (the authors use ten)."""
    if not 0.0 <= valid_fraction < 1.0:
        raise BisepError(f"--valid-fraction must be in [0, 1), got {valid_fraction}")
    csv_path, audio_dir = Path(csv_path), require_folder(audio_dir, "audio folder")
    rows = _rows(csv_path)
    videos: dict[str, int] = {}
    for youtube_id, _, _, _ in rows.values():
        videos[youtube_id] = videos.get(youtube_id, 0) + 1
    index = index_audio(audio_dir)
    jobs, records, conflicts = [], {}, {}
    for clip_id, (youtube_id, start, label, split) in rows.items():
        if split == "train" and stable_fraction(seed, clip_id) < valid_fraction:
            split = "valid"
        stems = youtube_stems(youtube_id, start, CLIP_SECONDS, videos[youtube_id] == 1)
        job = Job(split, clip_id, find_source(index, stems), f"{youtube_id},{start:g}", CLIP_SECONDS, start=start)
        jobs.append(job)
        prompt = class_prompt(label)
        records[job.key] = {"caption": prompt, "phrases": [prompt], "labels": [label], "youtube_id": youtube_id,
                            "start_time": start}
        conflicts[job.key] = frozenset({label})
    compositions = {"valid_2": ("valid", 2, 1), **{f"test_{k}": ("test", k, test_rounds) for k in (2, 3, 4)}}
    return Plan(
        dataset="vggsound", splits=("train", "valid", "test"), jobs=jobs, records=records, conflicts=conflicts,
        compositions=compositions,
        options={"seed": seed, "valid_fraction": valid_fraction, "test_rounds": test_rounds},
        layout={"seed": seed, "valid_fraction": valid_fraction}, seed=seed,
        inputs={csv_path.name: sha256_file(csv_path)},
        notes={"classes": len({label for _, _, label, _ in rows.values()})},
    )


def _rows(path: Path) -> dict[str, tuple[str, float, str, str]]:
    """Clip id -> (youtube_id, start, label, split); a repeated clip keeps its first row."""
    rows: dict[str, tuple[str, float, str, str]] = {}
    for position, (line, row) in enumerate(read_csv_rows(path)):
        if len(row) != 4:
            raise BisepError(f"{path}, line {line}: expected 4 fields (youtube_id, start_seconds, label, split), "
                             f"got {len(row)}")
        youtube_id, start_field, label, split = (value.strip() for value in row)
        try:
            start = float(start_field)
        except ValueError:
            if position == 0:
                continue
            raise BisepError(f"{path}, line {line}: start_seconds {start_field!r} is not a number") from None
        if split not in OFFICIAL_SPLITS:
            raise BisepError(f"{path}, line {line}: split {split!r} is not train or test")
        if not youtube_id or not label:
            raise BisepError(f"{path}, line {line}: empty youtube_id or label")
        rows.setdefault(f"{youtube_id}_{start_text(start)}", (youtube_id, start, label, split))
    if not rows:
        raise BisepError(f"{path}: no clips listed")
    return rows
