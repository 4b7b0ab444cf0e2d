"""Training and evaluation mixtures as map-style torch datasets, and the collate function that batches them.

- :class:`MixtureOfMixtures`: the weak and unsupervised training example. N captioned natural mixtures (clips)
  each get a random gain and are divided by N; their sum is the mixture of mixtures (MoM). Each clip brings P
  of its phrases and their repeat weights.
- :class:`SingleSourceMixtures`: the supervised baseline's example, N single-source clips mixed the same way.
- :class:`CompositionMixtures`: the fixed evaluation mixtures of ``compositions/<name>.csv``, mixed as their
  mean.

Every target is that clip's contribution to the mixture (gain and 1/N applied), so targets sum to the mixture.

Randomness: item i of epoch e depends only on ``(seed, e, i)``, so items are the same for any DataLoader
worker count and any DistributedSampler sharding. The epoch sits in shared memory, so ``set_epoch`` also
reaches persistent workers; call it before iterating the loader, as with DistributedSampler.

Unreadable audio (missing, empty or corrupt file): the clip is skipped and the seeded generator draws another,
so an item never holds zeros in place of a clip. Every process keeps its own ``failures`` (path -> one-line
message). Each item lists the failures it met under ``skipped`` as ``(path, message)`` pairs. DataLoader
workers work on copies of the dataset, so the trainer passes each batch's ``skipped`` to
:meth:`record_skipped` on its own copy. The main process logs each new file once, with the :mod:`logging`
module (logger ``bisep.data.sampling``, level WARNING); workers log nothing. Once the failures exceed
``max_failure_share`` of the split's files, :class:`~bisep.errors.BisepError` is raised: in the main process
by :meth:`record_skipped` or the load itself, or in a worker, which the DataLoader re-raises in the trainer as
a ``BisepError`` with the worker's traceback appended. With DistributedDataParallel every rank counts its own.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.utils.data

from bisep.audio import load_audio
from bisep.data.format import Dataset, DatasetError
from bisep.errors import AudioError, BisepError

logger = logging.getLogger(__name__)

Skipped = list[tuple[str, str]]


def draw_phrases(
    phrases: list[str], caption: str, count: int, rng: np.random.Generator
) -> tuple[list[str], list[float]]:
    """``count`` prompts for one clip and their repeat weights.

    With fewer distinct phrases than ``count`` they are cycled in order and each copy weighs 1/copies, so
    every distinct phrase sums to 1; with more, a random subset (kept in caption order) of weight 1 each. A
    clip without phrases uses its caption as its one phrase.
    """
    distinct = list(dict.fromkeys(phrases)) or [caption]
    if len(distinct) > count:
        keep = sorted(rng.choice(len(distinct), size=count, replace=False))
        distinct = [distinct[k] for k in keep]
    chosen = [distinct[k % len(distinct)] for k in range(count)]
    return chosen, [1.0 / chosen.count(phrase) for phrase in chosen]


def clip_prompt(record: dict[str, Any]) -> str:
    """The text a clip is queried with: its one phrase for a single-source clip, else its caption."""
    phrases = record["phrases"]
    return phrases[0] if len(phrases) == 1 else record["caption"]


def collate_mixtures(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch items: tensors stacked (``mixture`` [B, T], ``clips`` [B, N, T], ``repeat_weights`` [B, N, P]),
    other fields kept as lists of B (``phrases``: B lists of N lists of P), ``skipped`` joined into one list."""
    batch: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if isinstance(values[0], torch.Tensor):
            shapes = sorted({tuple(value.shape) for value in values})
            if len(shapes) > 1:
                raise BisepError(f"cannot batch '{key}' of shapes {shapes}: set segment_samples so that "
                                 "every item has the same length")
            batch[key] = torch.stack(values)
        elif key == "skipped":
            batch[key] = [entry for value in values for entry in value]
        else:
            batch[key] = values
    return batch


class FailureCounting:
    """Counts the unreadable audio files a dataset met: each new one is logged once (main process only) and
    :class:`BisepError` is raised once they exceed ``max_failure_share`` of ``file_count``."""

    def _start_counting_failures(self, scope: str, what: str, file_count: int, max_failure_share: float) -> None:
        if not 0.0 <= max_failure_share < 1.0:
            raise ValueError(f"max_failure_share must be in [0, 1), got {max_failure_share}")
        self.failures: dict[str, str] = {}
        self.max_failure_share = max_failure_share
        self._failure_scope = scope
        self._what = what
        self._file_count = file_count

    def record_skipped(self, skipped: Skipped) -> None:
        """Count failures met elsewhere (a batch's ``skipped``, from DataLoader workers); log each new file once
        and raise :class:`BisepError` past ``max_failure_share``."""
        for path, message in skipped:
            self._record_failure(path, message)

    def _record_failure(self, path: str, message: str) -> None:
        if path not in self.failures:
            self.failures[path] = message
            if torch.utils.data.get_worker_info() is None:
                logger.warning("skipping unreadable audio: %s", message)
        if len(self.failures) > self.max_failure_share * self._file_count:
            first = next(iter(self.failures.values()))
            raise BisepError(
                f"{self._failure_scope}: {len(self.failures)} of {self._file_count} audio files of {self._what} "
                f"are unreadable (more than {self.max_failure_share:.0%}); first: {first}"
            )


class _ClipsDataset(FailureCounting, torch.utils.data.Dataset):
    """Reads clips of one dataset folder at one rate, mono, counting the files that fail."""

    def __init__(self, folder: Dataset, ids: list[str], what: str, sample_rate: int,
                 segment_samples: int | None, max_failure_share: float) -> None:
        if not ids:
            raise DatasetError(f"{folder.root}: {what} has no clips")
        if segment_samples is not None and segment_samples <= 0:
            raise ValueError(f"segment_samples must be positive or None, got {segment_samples}")
        self._start_counting_failures(str(folder.root), what, len({str(folder.audio_path(i)) for i in ids}),
                                      max_failure_share)
        self.folder = folder
        self.ids = ids
        self.sample_rate = sample_rate
        self.segment_samples = segment_samples

    def _read(self, clip_id: str) -> torch.Tensor:
        """One clip as ``(samples,)`` float32 at ``sample_rate``."""
        return load_audio(self.folder.audio_path(clip_id), sample_rate=self.sample_rate, channels=1)[0][0]

    def _load(self, clip_id: str, skipped: Skipped) -> torch.Tensor | None:
        """The clip, or None after adding its failure to ``skipped`` and ``failures``."""
        path = str(self.folder.audio_path(clip_id))
        if path in self.failures:
            skipped.append((path, self.failures[path]))
            return None
        try:
            return self._read(clip_id)
        except AudioError as error:
            skipped.append((path, str(error)))
            self._record_failure(path, str(error))
            return None


@dataclass
class Draw:
    """The clips of one training item: ``clips`` [N, T] as they sit in the mixture, ``gains`` [N] before 1/N."""

    rng: np.random.Generator
    clip_ids: list[str]
    clips: torch.Tensor
    gains: torch.Tensor
    skipped: Skipped


def check_mixture_arguments(count: int, gain_range: tuple[float, float], length: int | None, seed: int) -> None:
    """The arguments every random-mixture dataset (map-style or streamed) shares, checked once."""
    if count < 1:
        raise ValueError(f"need at least one clip per mixture, got {count}")
    low, high = gain_range
    if not 0.0 < low <= high:
        raise ValueError(f"gain_range must satisfy 0 < low <= high, got {gain_range}")
    if length is not None and length <= 0:
        raise ValueError(f"length must be positive or None, got {length}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")


class _RandomMixtures(_ClipsDataset):
    """N clips with no shared label, random gains in ``gain_range`` divided by N, cropped to a segment."""

    def __init__(self, dataset_root: str | Path, split: str, count: int, segment_samples: int | None,
                 sample_rate: int, gain_range: tuple[float, float], length: int | None, seed: int,
                 max_failure_share: float) -> None:
        check_mixture_arguments(count, gain_range, length, seed)
        folder = Dataset.open(dataset_root)
        super().__init__(folder, folder.split(split), f"split '{split}'", sample_rate, segment_samples,
                         max_failure_share)
        self.split = split
        self.count = count
        self.gain_range = (float(gain_range[0]), float(gain_range[1]))
        self.length = length
        self.seed = seed
        self._labels = [frozenset(folder.clips[clip_id]["labels"]) for clip_id in self.ids]
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch's draws (as ``DistributedSampler.set_epoch``); seen by workers already running."""
        if epoch < 0:
            raise ValueError(f"epoch must be non-negative, got {epoch}")
        self._epoch.fill_(epoch)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def __len__(self) -> int:
        return self.length if self.length is not None else len(self.ids)

    def _draw(self, index: int) -> Draw:
        """Clip ``index`` of the split first, then random clips sharing no label with those already chosen."""
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} of {len(self)}")
        rng = np.random.default_rng([self.seed, self.epoch, index])
        order = rng.permutation(len(self.ids))
        chosen: list[int] = []
        waves: list[torch.Tensor] = []
        labels: set[str] = set()
        tried: set[int] = set()
        skipped: Skipped = []
        for position in itertools.chain([index % len(self.ids)], order):
            if len(chosen) == self.count:
                break
            if position in tried or labels & self._labels[position]:
                continue
            tried.add(position)
            wave = self._load(self.ids[position], skipped)
            if wave is not None:
                chosen.append(position)
                waves.append(wave)
                labels |= self._labels[position]
        if len(chosen) < self.count:
            raise BisepError(f"{self.folder.root}: split '{self.split}' has no {self.count} readable clips "
                             f"without a shared label for item {index}")
        return make_draw(rng, [self.ids[p] for p in chosen], waves, self.segment_samples, self.gain_range, skipped)


def make_draw(rng: np.random.Generator, clip_ids: list[str], waves: list[torch.Tensor], segment_samples: int | None,
              gain_range: tuple[float, float], skipped: Skipped) -> Draw:
    """Crop each ``(samples,)`` wave to a segment (None: the longest wave), draw gains, divide by N."""
    length = segment_samples or max(wave.shape[0] for wave in waves)
    segments = torch.stack([_crop(wave, length, rng) for wave in waves])
    gains = torch.from_numpy(rng.uniform(*gain_range, size=len(waves))).float()
    return Draw(rng, clip_ids, segments * (gains / len(waves))[:, None], gains, skipped)


def _crop(wave: torch.Tensor, length: int, rng: np.random.Generator) -> torch.Tensor:
    """``(samples,)`` -> ``(length,)``: a random window of a longer clip; a shorter one padded with zeros."""
    extra = wave.shape[0] - length
    if extra > 0:
        start = int(rng.integers(0, extra + 1))
        return wave[start:start + length]
    return torch.nn.functional.pad(wave, (0, -extra))


class MixtureOfMixtures(_RandomMixtures):
    """Mixtures of N natural mixtures for weak and unsupervised training.

    Item ``i`` (T = ``segment_samples``, or the longest of its clips when None):
    ``mixture`` [T] float32, the MoM; ``clips`` [N, T], each clip as it sits in the MoM (its gain and 1/N
    applied, so ``clips.sum(0) == mixture``); ``gains`` [N], the gains before 1/N; ``captions`` N strings;
    ``phrases`` N lists of P strings and ``repeat_weights`` [N, P] (see :func:`draw_phrases`);
    ``phrases_complete`` [N] bool, whether the P phrases name every sound of the clip (its consistency target
    is reachable only then); ``clip_ids``;
    ``skipped`` the ``(path, message)`` failures met while drawing.
    """

    def __init__(self, dataset_root: str | Path, split: str = "train", clips_per_mixture: int = 2,
                 phrases_per_clip: int = 3, segment_samples: int | None = None, sample_rate: int = 16000,
                 gain_range: tuple[float, float] = (0.5, 1.5), length: int | None = None, seed: int = 0,
                 max_failure_share: float = 0.05) -> None:
        if phrases_per_clip < 1:
            raise ValueError(f"need at least one phrase per clip, got {phrases_per_clip}")
        super().__init__(dataset_root, split, clips_per_mixture, segment_samples, sample_rate, gain_range,
                         length, seed, max_failure_share)
        self.phrases_per_clip = phrases_per_clip

    def __getitem__(self, index: int) -> dict[str, Any]:
        draw = self._draw(index)
        return mixture_of_mixtures_item(draw, [self.folder.clips[i] for i in draw.clip_ids], self.phrases_per_clip)


def mixture_of_mixtures_item(draw: Draw, records: list[dict[str, Any]], phrases_per_clip: int) -> dict[str, Any]:
    """The :class:`MixtureOfMixtures` item of a draw and its clips' annotation records."""
    prompts = [draw_phrases(record["phrases"], record["caption"], phrases_per_clip, draw.rng) for record in records]
    return {
        "mixture": draw.clips.sum(0),
        "clips": draw.clips,
        "gains": draw.gains,
        "captions": [record["caption"] for record in records],
        "phrases": [phrases for phrases, _ in prompts],
        "repeat_weights": torch.tensor([weights for _, weights in prompts], dtype=torch.float32),
        "phrases_complete": torch.tensor([len(set(record["phrases"])) <= phrases_per_clip for record in records]),
        "clip_ids": draw.clip_ids,
        "skipped": draw.skipped,
    }


class SingleSourceMixtures(_RandomMixtures):
    """Mixtures of N single-source clips of different classes, for the supervised baseline.

    Item ``i``: ``mixture`` [T] float32; ``sources`` [N, T], each as it sits in the mixture (gain and 1/N
    applied, so ``sources.sum(0) == mixture``); ``gains`` [N]; ``prompts`` N strings (see
    :func:`clip_prompt`); ``clip_ids``; ``skipped``. Refuses a split holding a clip of more than one source.
    """

    def __init__(self, dataset_root: str | Path, split: str = "train_sup", sources_per_mixture: int = 2,
                 segment_samples: int | None = None, sample_rate: int = 16000,
                 gain_range: tuple[float, float] = (0.5, 1.5), length: int | None = None, seed: int = 0,
                 max_failure_share: float = 0.05) -> None:
        super().__init__(dataset_root, split, sources_per_mixture, segment_samples, sample_rate, gain_range,
                         length, seed, max_failure_share)
        for clip_id in self.ids:
            record = self.folder.clips[clip_id]
            if len(record["labels"]) > 1 or len(record["phrases"]) > 1:
                raise DatasetError(f"split '{split}': clip {clip_id} holds more than one source "
                                   f"({', '.join(record['phrases'] or record['labels'])})")

    def __getitem__(self, index: int) -> dict[str, Any]:
        draw = self._draw(index)
        return single_source_item(draw, [self.folder.clips[clip_id] for clip_id in draw.clip_ids])


def single_source_item(draw: Draw, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The :class:`SingleSourceMixtures` item of a draw and its clips' annotation records."""
    return {
        "mixture": draw.clips.sum(0),
        "sources": draw.clips,
        "gains": draw.gains,
        "prompts": [clip_prompt(record) for record in records],
        "clip_ids": draw.clip_ids,
        "skipped": draw.skipped,
    }


class CompositionMixtures(_ClipsDataset):
    """The evaluation mixtures of ``compositions/<name>.csv``: k clips mixed as their mean ((a + b) / 2).

    Every clip is read once when the dataset is made; a composition with an unreadable clip is dropped
    (its id in ``skipped_compositions``, the file in ``failures``, logged once). Item ``i``: ``mixture`` [T]
    float32; ``sources`` [k, T], each clip / k (so ``sources.sum(0) == mixture``); ``prompts`` k strings (see
    :func:`clip_prompt`); ``captions``; ``clip_ids``; ``composition_id``. T is ``segment_samples`` (the start
    of each clip) or the longest clip; shorter clips are padded with zeros at the end. No randomness.
    """

    def __init__(self, dataset_root: str | Path, composition_name: str = "valid_2",
                 segment_samples: int | None = None, sample_rate: int = 16000,
                 max_failure_share: float = 0.05) -> None:
        folder = Dataset.open(dataset_root)
        rows = folder.compositions(composition_name)
        members = list(dict.fromkeys(clip_id for _, clip_ids in rows for clip_id in clip_ids))
        super().__init__(folder, members, f"compositions '{composition_name}'", sample_rate, segment_samples,
                         max_failure_share)
        readable = {clip_id for clip_id in members if self._load(clip_id, []) is not None}
        self.compositions = [(name, clip_ids) for name, clip_ids in rows if readable.issuperset(clip_ids)]
        self.skipped_compositions = [name for name, clip_ids in rows if not readable.issuperset(clip_ids)]

    def __len__(self) -> int:
        return len(self.compositions)

    def __getitem__(self, index: int) -> dict[str, Any]:
        composition_id, clip_ids = self.compositions[index]
        waves = [self._read(clip_id) for clip_id in clip_ids]
        length = self.segment_samples or max(wave.shape[0] for wave in waves)
        sources = torch.stack([_pad_or_cut(wave, length) for wave in waves]) / len(waves)
        records = [self.folder.clips[clip_id] for clip_id in clip_ids]
        return {
            "mixture": sources.sum(0),
            "sources": sources,
            "prompts": [clip_prompt(record) for record in records],
            "captions": [record["caption"] for record in records],
            "clip_ids": list(clip_ids),
            "composition_id": composition_id,
        }


def _pad_or_cut(wave: torch.Tensor, length: int) -> torch.Tensor:
    """``(samples,)`` -> ``(length,)``: the start of a longer clip, a shorter one padded with zeros at the end."""
    return torch.nn.functional.pad(wave[:length], (0, max(0, length - wave.shape[0])))
