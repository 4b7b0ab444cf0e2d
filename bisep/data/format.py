"""The one on-disk dataset format that every trainer reads (see ``docs/data-format.md``).

The built-in corpus and the AudioCaps / VGGSound / MUSIC preparation all write it:

- ``annotations.json``: ``{"format", "sample_rate", "clips": {id: record}}``; a record holds ``audio`` (path
  relative to the dataset folder), ``caption``, ``phrases`` (the caption's single-source phrases) and
  ``labels`` (class labels), plus optional ground truth (``sources``);
- ``splits/<split>.csv``: one column ``id``;
- ``compositions/<name>.csv``: columns ``id, clip_1 .. clip_k``: the test mixtures of k clips;
- ``audio/``: the audio files; ``manifest.json``: how the dataset was made.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bisep.errors import BisepError
from bisep.files import write_json_atomic, write_text_atomic

ANNOTATIONS_FORMAT = "bisep-annotations/1"
REQUIRED_FIELDS = ("audio", "caption", "phrases", "labels")


class DatasetError(BisepError):
    """A dataset folder that does not follow the format."""


def write_dataset(
    folder: str | Path,
    clips: dict[str, dict[str, Any]],
    splits: dict[str, list[str]],
    compositions: dict[str, list[list[str]]],
    manifest: dict[str, Any],
    sample_rate: int,
) -> None:
    """Write annotations, split id lists, composition lists and the manifest (each file atomically)."""
    folder = Path(folder)
    write_json_atomic(folder / "annotations.json",
                      {"format": ANNOTATIONS_FORMAT, "sample_rate": sample_rate, "clips": clips})
    for split, ids in splits.items():
        write_text_atomic(folder / "splits" / f"{split}.csv", _csv([["id"], *[[i] for i in ids]]))
    for name, rows in compositions.items():
        width = max(len(row) for row in rows)
        header = ["id", *[f"clip_{k + 1}" for k in range(width)]]
        write_text_atomic(folder / "compositions" / f"{name}.csv",
                          _csv([header, *[[f"{name}-{n:06d}", *row] for n, row in enumerate(rows)]]))
    write_json_atomic(folder / "manifest.json", manifest)


def _csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


@dataclass(frozen=True)
class Dataset:
    """A dataset folder: its annotations, split id lists and composition lists, read and checked."""

    root: Path
    sample_rate: int
    clips: dict[str, dict[str, Any]]

    @classmethod
    def open(cls, root: str | Path) -> "Dataset":
        root = Path(root)
        path = root / "annotations.json"
        if not path.is_file():
            raise DatasetError(f"{root}: not a bisep dataset (no annotations.json)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DatasetError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(data, dict) or data.get("format") != ANNOTATIONS_FORMAT:
            raise DatasetError(f"{path}: unknown annotations format (expected {ANNOTATIONS_FORMAT})")
        clips = data.get("clips")
        if not isinstance(clips, dict):
            raise DatasetError(f"{path}: 'clips' must map ids to records")
        for clip_id, record in clips.items():
            missing = [field for field in REQUIRED_FIELDS if field not in record]
            if missing:
                raise DatasetError(f"{path}: clip {clip_id} lacks {', '.join(missing)}")
        return cls(root, int(data.get("sample_rate", 16000)), clips)

    def split(self, name: str) -> list[str]:
        rows = self._read_csv(self.root / "splits" / f"{name}.csv")
        ids = [row["id"] for row in rows]
        unknown = [clip_id for clip_id in ids if clip_id not in self.clips]
        if unknown:
            raise DatasetError(f"split {name}: {len(unknown)} ids not in annotations (first: {unknown[0]})")
        return ids

    def compositions(self, name: str) -> list[tuple[str, list[str]]]:
        """``(composition id, [clip ids])`` rows of ``compositions/<name>.csv``."""
        rows = self._read_csv(self.root / "compositions" / f"{name}.csv")
        result = []
        for row in rows:
            members = [value for key, value in row.items() if key.startswith("clip_") and value]
            unknown = [clip_id for clip_id in members if clip_id not in self.clips]
            if unknown:
                raise DatasetError(f"composition {row.get('id')}: unknown clip {unknown[0]}")
            result.append((row["id"], members))
        return result

    def audio_path(self, clip_id: str) -> Path:
        return self.root / self.clips[clip_id]["audio"]

    @staticmethod
    def _read_csv(path: Path) -> list[dict[str, str]]:
        if not path.is_file():
            raise DatasetError(f"{path}: not found")
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        if rows and "id" not in rows[0]:
            raise DatasetError(f"{path}: no 'id' column")
        return rows
