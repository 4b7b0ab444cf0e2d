"""Training mixtures streamed from WebDataset shards (``bisep data shard``), for data too large to read at random.

:class:`StreamedMixtureOfMixtures` and :class:`StreamedSingleSourceMixtures` build the same items as their
map-style twins in :mod:`bisep.data.sampling` (same keys, shapes, gains, crops and phrase draws), from clips read
in order from tar shards instead of at random from a folder:

- Shards are dealt to *slots*, one per (rank, DataLoader worker): each epoch a seeded permutation of the
  shard list, slot ``k`` of ``S`` taking every S-th shard, so slots read disjoint shards that together cover
  the split. A slot that has read its shards reads them again in a new seeded order, so every rank can draw
  the epoch's steps even when shards hold unequal clip counts.
- Clips pass through a shuffle buffer (``shuffle_buffer`` clips, encoded; audio is decoded when used). Each
  arriving clip takes the place of a random one in the buffer, which becomes an item's first clip; the
  others are random clips of the buffer sharing no label (and not the clip itself) with those chosen.
- Randomness depends only on ``(seed, epoch, slot)``, so the same seed, rank count and worker count give the
  same stream. Unlike the map-style datasets the items do depend on the worker count (it sets the slots).
- An epoch is ``length`` items (default: the clips in the index, each about once the first clip of an item).

Unreadable samples (corrupt audio or metadata, a tar that breaks off) are skipped and reported in each item's
``skipped`` exactly as the map-style datasets do (see :class:`~bisep.data.sampling.FailureCounting`), named
``<shard path>:<key>``; past ``max_failure_share`` of the clips in the index, :class:`BisepError` is raised.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.utils.data

from bisep.data.sampling import (
    FailureCounting,
    Skipped,
    check_mixture_arguments,
    collate_mixtures,
    make_draw,
    mixture_of_mixtures_item,
    single_source_item,
)
from bisep.data.shards import ShardIndex, ShardSample, read_shard
from bisep.errors import AudioError, BisepError, ConfigError


class _StreamedMixtures(FailureCounting, torch.utils.data.IterableDataset):
    """Mixtures of ``count`` streamed clips sharing no label; subclasses turn a draw into an item."""

    def __init__(self, shards_folder: str | Path, split: str, count: int, segment_samples: int | None,
                 sample_rate: int, gain_range: tuple[float, float], length: int | None, seed: int,
                 max_failure_share: float, shuffle_buffer: int, rank: int, world_size: int) -> None:
        check_mixture_arguments(count, gain_range, length, seed)
        if segment_samples is not None and segment_samples <= 0:
            raise ValueError(f"segment_samples must be positive or None, got {segment_samples}")
        if shuffle_buffer < 1:
            raise ConfigError(f"data.shuffle_buffer must be at least 1, got {shuffle_buffer}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of {world_size}")
        self.index = ShardIndex.open(shards_folder, split)
        self._start_counting_failures(str(self.index.folder), f"shards '{split}'", self.index.clips,
                                      max_failure_share)
        self.split = split
        self.count = count
        self.segment_samples = segment_samples
        self.sample_rate = sample_rate
        self.gain_range = (float(gain_range[0]), float(gain_range[1]))
        self.length = length
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip_batches, self.batch_size = 0, 0, 1

    def __len__(self) -> int:
        """Items per epoch over all ranks (what sets the trainer's steps per epoch)."""
        return self.length if self.length is not None else self.index.clips

    def set_epoch(self, epoch: int) -> None:
        if epoch < 0:
            raise ValueError(f"epoch must be non-negative, got {epoch}")
        self.epoch = epoch

    def loader(self, batch_size: int, workers: int, skip_batches: int = 0) -> torch.utils.data.DataLoader:
        """This rank's micro-batches of the epoch, from micro-batch ``skip_batches`` on (an exact resume: the
        skipped part of the stream is read again and dropped). Of W workers, worker ``w`` makes micro-batches
        w, w + W, ... of the epoch."""
        slots = self.world_size * max(workers, 1)
        if len(self.index.shards) < slots:
            raise BisepError(f"{self.index.folder}: {len(self.index.shards)} shards of '{self.split}' cannot feed "
                             f"{self.world_size} ranks x {max(workers, 1)} workers; shard again with smaller "
                             f"shards (--clips-per-shard, --shard-size-mb) or use fewer data.workers")
        self.batch_size, self.skip_batches = batch_size, skip_batches
        return torch.utils.data.DataLoader(self, batch_size=batch_size, collate_fn=collate_mixtures,
                                           num_workers=workers)

    def first_batches(self, batch_size: int, count: int) -> Iterator[dict[str, Any]]:
        """``count`` fixed batches of the current epoch, read in this process (BatchNorm recalibration)."""
        items = self._items(self.rank, self.world_size)
        for _ in range(count):
            yield collate_mixtures(list(itertools.islice(items, batch_size)))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = torch.utils.data.get_worker_info()
        workers, worker_id = (worker.num_workers, worker.id) if worker is not None else (1, 0)
        # The DataLoader takes batch b from worker b % workers; after skipping, batch b is the stream's batch
        # skip_batches + b, so this worker plays the part of the one that made those.
        part = (worker_id + self.skip_batches) % workers
        skipped_batches = max(0, -(-(self.skip_batches - part) // workers))
        items = self._items(self.rank * workers + part, self.world_size * workers)
        return itertools.islice(items, skipped_batches * self.batch_size, None)

    def shards_of_slot(self, slot: int, slots: int) -> list[dict[str, Any]]:
        """The shards (index entries) slot ``slot`` of ``slots`` reads this epoch."""
        if not 0 <= slot < slots:
            raise ValueError(f"slot {slot} is not one of {slots}")
        if len(self.index.shards) < slots:
            raise BisepError(f"{self.index.folder}: {len(self.index.shards)} shards cannot feed {slots} readers")
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.index.shards))
        return [self.index.shards[k] for k in order[slot::slots]]

    def clips(self, slot: int, slots: int, rounds: int | None = None) -> Iterator[ShardSample | Skipped]:
        """The slot's clips, round after round (each round its shards in a new seeded order); a sample that
        cannot be read comes as a list of its ``(where, message)`` failures instead."""
        shards = self.shards_of_slot(slot, slots)
        rng = np.random.default_rng([self.seed, self.epoch, slot, 1])  # [..., 0]: the items' draws
        for _ in itertools.count() if rounds is None else range(rounds):
            for position in rng.permutation(len(shards)):
                path = self.index.folder / shards[position]["name"]
                failures: Skipped = []
                seen = 0  # samples read or reported one by one
                for sample in read_shard(path, lambda where, message: failures.append((where, message))):
                    seen += 1 + sum(where != str(path) for where, _ in failures)
                    if failures:
                        yield failures
                        failures = []
                    yield sample
                seen += sum(where != str(path) for where, _ in failures)
                if seen < shards[position]["clips"]:
                    failures.append((str(path), f"{path}: ends after {seen} of its {shards[position]['clips']} "
                                                f"clips (corrupt tar data)"))
                if failures:
                    yield failures

    def _items(self, slot: int, slots: int) -> Iterator[dict[str, Any]]:
        rng = np.random.default_rng([self.seed, self.epoch, slot, 0])
        slot_clips = sum(shard["clips"] for shard in self.shards_of_slot(slot, slots))
        capacity = max(1, min(self.shuffle_buffer, slot_clips))
        buffer: list[ShardSample] = []
        carried: Skipped = []
        since_last_item = 0
        for arriving in self.clips(slot, slots):
            if isinstance(arriving, list):
                for where, message in arriving:
                    self._record_failure(where, message)
                carried += arriving
                continue
            if len(buffer) < capacity:
                buffer.append(arriving)
                continue
            position = int(rng.integers(len(buffer)))
            first, buffer[position] = buffer[position], arriving
            item = self._item(first, buffer, rng, carried)
            if item is None:
                since_last_item += 1
                if since_last_item > 2 * slot_clips + capacity:
                    raise BisepError(f"{self.index.folder}: shards of '{self.split}' read by slot {slot} of "
                                     f"{slots} give no readable mixture of {self.count} clips")
                continue
            since_last_item, carried = 0, []
            yield item

    def _item(self, first: ShardSample, buffer: list[ShardSample], rng: np.random.Generator,
              skipped: Skipped) -> dict[str, Any] | None:
        """The item whose first clip is ``first``, partners from ``buffer``; None when ``first`` is unreadable
        (its failure then joins ``skipped``, which the next item carries)."""
        wave = self._decode(first, skipped)
        if wave is None:
            return None
        chosen, waves = [first], [wave]
        labels = set(first.record["labels"])
        for position in rng.permutation(len(buffer)):
            if len(chosen) == self.count:
                break
            candidate = buffer[position]
            if labels & set(candidate.record["labels"]) or any(c.record["id"] == candidate.record["id"]
                                                               for c in chosen):
                continue
            wave = self._decode(candidate, skipped)
            if wave is not None:
                chosen.append(candidate)
                waves.append(wave)
                labels |= set(candidate.record["labels"])
        if len(chosen) < self.count:
            raise BisepError(f"{self.index.folder}: a shuffle buffer of {len(buffer)} clips of '{self.split}' holds "
                             f"no {self.count} readable clips without a shared label; raise data.shuffle_buffer")
        draw = make_draw(rng, [c.record["id"] for c in chosen], waves, self.segment_samples, self.gain_range,
                         list(skipped))
        return self._build(draw, [c.record for c in chosen])

    def _decode(self, sample: ShardSample, skipped: Skipped) -> torch.Tensor | None:
        if sample.where in self.failures:
            skipped.append((sample.where, self.failures[sample.where]))
            return None
        try:
            return sample.decode(self.sample_rate)
        except AudioError as error:
            skipped.append((sample.where, str(error)))
            self._record_failure(sample.where, str(error))
            return None

    def _build(self, draw, records: list[dict[str, Any]]) -> dict[str, Any]:
        raise NotImplementedError


class StreamedMixtureOfMixtures(_StreamedMixtures):
    """:class:`~bisep.data.sampling.MixtureOfMixtures` items streamed from ``<split>-*.tar`` shards."""

    def __init__(self, shards_folder: str | Path, split: str = "train", clips_per_mixture: int = 2,
                 phrases_per_clip: int = 3, segment_samples: int | None = None, sample_rate: int = 16000,
                 gain_range: tuple[float, float] = (0.5, 1.5), length: int | None = None, seed: int = 0,
                 max_failure_share: float = 0.05, shuffle_buffer: int = 1000, rank: int = 0,
                 world_size: int = 1) -> None:
        if phrases_per_clip < 1:
            raise ValueError(f"need at least one phrase per clip, got {phrases_per_clip}")
        super().__init__(shards_folder, split, clips_per_mixture, segment_samples, sample_rate, gain_range, length,
                         seed, max_failure_share, shuffle_buffer, rank, world_size)
        self.phrases_per_clip = phrases_per_clip

    def _build(self, draw, records: list[dict[str, Any]]) -> dict[str, Any]:
        return mixture_of_mixtures_item(draw, records, self.phrases_per_clip)


class StreamedSingleSourceMixtures(_StreamedMixtures):
    """:class:`~bisep.data.sampling.SingleSourceMixtures` items streamed from shards of a single-source split."""

    def __init__(self, shards_folder: str | Path, split: str = "train_sup", sources_per_mixture: int = 2,
                 segment_samples: int | None = None, sample_rate: int = 16000,
                 gain_range: tuple[float, float] = (0.5, 1.5), length: int | None = None, seed: int = 0,
                 max_failure_share: float = 0.05, shuffle_buffer: int = 1000, rank: int = 0,
                 world_size: int = 1) -> None:
        super().__init__(shards_folder, split, sources_per_mixture, segment_samples, sample_rate, gain_range,
                         length, seed, max_failure_share, shuffle_buffer, rank, world_size)
        if not self.index.single_source:
            raise BisepError(f"{self.index.folder}: shards of '{split}' hold clips of more than one source")

    def _build(self, draw, records: list[dict[str, Any]]) -> dict[str, Any]:
        return single_source_item(draw, records)
