"""Test compositions: a list of k-clip test mixtures from a dataset folder, each checked and then loaded.

A composition of k clips is mixed as their mean (the paper's (a + b) / 2). The reference of each clip is the clip
as it sits in the mixture (divided by k), so the references sum to the mixture and a perfect separation returns
them exactly. Clips of different lengths are zero-padded to the longest. A clip is queried with its one phrase
when it has exactly one (single-source clips), else with its caption (``docs/data-format.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bisep.audio import SILENCE_PEAK_DB, load_audio, peak_db
from bisep.data.format import Dataset, DatasetError


@dataclass(frozen=True)
class Composition:
    id: str
    clips: tuple[str, ...]
    prompts: tuple[str, ...]
    classes: tuple[str | None, ...]
    """The first label of each clip (None for datasets without labels, such as AudioCaps)."""


@dataclass
class LoadedComposition:
    """``mixture`` ``(samples,)`` and ``references`` ``(k, samples)`` float32 at the dataset's rate;
    ``silent_clips`` lists the clips whose peak is below -80 dBFS (such a composition is skipped)."""

    mixture: np.ndarray
    references: np.ndarray
    silent_clips: list[str]


def prompt_of(record: dict) -> str:
    phrases = record.get("phrases") or []
    return phrases[0] if len(phrases) == 1 else record["caption"]


@dataclass
class CompositionList:
    """The compositions of ``DATASET/compositions/<name>.csv``, checked: known clips, at least two distinct
    clips per composition, every audio file present."""

    dataset: Dataset
    name: str
    path: Path
    compositions: list[Composition]

    @classmethod
    def open(cls, path: str | Path) -> "CompositionList":
        path = Path(path)
        if path.is_dir():
            listed = sorted(p.name for p in (path / "compositions").glob("*.csv"))
            hint = f" (in this dataset: {', '.join(listed)})" if listed else ""
            raise DatasetError(f"{path}: is a folder; give a compositions file DATASET/compositions/NAME.csv{hint}")
        if not path.is_file():
            raise DatasetError(f"{path}: compositions file not found")
        if path.suffix.lower() != ".csv" or path.parent.name != "compositions":
            raise DatasetError(f"{path}: expected a file DATASET/compositions/NAME.csv of a bisep dataset")
        dataset = Dataset.open(path.parent.parent)
        compositions = []
        for composition_id, clips in dataset.compositions(path.stem):
            if len(clips) < 2:
                raise DatasetError(f"{path}: composition {composition_id} has {len(clips)} clip (needs 2 or more)")
            if len(set(clips)) != len(clips):
                raise DatasetError(f"{path}: composition {composition_id} repeats a clip ({', '.join(clips)})")
            for clip_id in clips:
                if not dataset.audio_path(clip_id).is_file():
                    raise DatasetError(f"{path}: composition {composition_id}: audio of clip {clip_id} not found "
                                       f"({dataset.audio_path(clip_id)})")
            records = [dataset.clips[clip_id] for clip_id in clips]
            compositions.append(Composition(
                composition_id, tuple(clips), tuple(prompt_of(r) for r in records),
                tuple((r.get("labels") or [None])[0] for r in records)))
        if not compositions:
            raise DatasetError(f"{path}: no compositions")
        return cls(dataset, path.stem, path, compositions)

    @property
    def sample_rate(self) -> int:
        return self.dataset.sample_rate

    def load(self, composition: Composition) -> LoadedComposition:
        clips = [load_audio(self.dataset.audio_path(clip_id), sample_rate=self.sample_rate, channels=1)[0][0].numpy()
                 for clip_id in composition.clips]
        silent = [clip_id for clip_id, clip in zip(composition.clips, clips) if peak_db(clip) < SILENCE_PEAK_DB]
        length = max(clip.shape[0] for clip in clips)
        references = np.zeros((len(clips), length), np.float32)
        for index, clip in enumerate(clips):
            references[index, :clip.shape[0]] = clip / len(clips)
        return LoadedComposition(references.sum(0), references, silent)
