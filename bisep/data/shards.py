"""WebDataset tar shards of one split of a dataset folder, for training that streams (``bisep data shard``).

``OUT/<split>-000000.tar`` ... hold the split's clips in a seeded random order. Each sample is two tar
members sharing a key (the clip's position in that order, ``000000042``): ``<key>.json``, the clip's annotation
record with its ``id`` and without its ``audio`` path, and ``<key>.<ext>``, its audio: 16- and 24-bit PCM files
re-encoded as FLAC (lossless, about half the size), everything else (FLAC, MP3, float wav, ...) as the original
bytes under its own extension. ``OUT/<split>-index.json``, written last and atomically, lists each shard's name,
clip count, size and SHA-256, and the total; a reader that finds it finds every shard complete.

Each shard is written beside its final name and renamed into place when complete, so a final name never holds
half a shard. ``OUT/.bisep-shard/<split>.json`` records the options and every finished shard: running the
same command again after an interruption continues after the last finished shard; other options or a changed
dataset are refused unless ``overwrite``. Shards are byte-identical for the same dataset, seed and options
(fixed member times and owners, FLAC of the same encoder). The tar members are written with the
``webdataset`` library's :class:`~webdataset.TarWriter` and read back with its tar iterators.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
from webdataset import TarWriter
from webdataset.tariterators import group_by_keys, tar_file_expander

from bisep.audio import READABLE_SUFFIXES, load_audio
from bisep.data.format import Dataset, DatasetError
from bisep.errors import AudioError
from bisep.files import atomic_path, sha256_file, write_json_atomic

SHARDS_FORMAT = "bisep-shards/1"
DEFAULT_SHARD_MB = 256.0
STATE_FOLDER = ".bisep-shard"
FLAC_SUBTYPES = ("PCM_16", "PCM_24")  # integer PCM that FLAC holds losslessly
MEMBER_TIME = 1_577_836_800  # 2020-01-01: a fixed time, so equal shards are byte-identical
TAR_BLOCK = 512
TAR_END = 2 * TAR_BLOCK
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class ShardError(DatasetError):
    """Shards that cannot be written or read as asked."""


@dataclass(frozen=True)
class ShardOptions:
    """How to shard: ``shard_size_mb`` (about, in MB of 10^6 bytes; 256 when neither is given) or
    ``clips_per_shard``, not both."""

    split: str = "train"
    seed: int = 0
    shard_size_mb: float | None = None
    clips_per_shard: int | None = None
    keep_original: bool = False

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.split):
            raise ShardError(f"split name '{self.split}' must be letters, digits, '_', '-' or '.'")
        if self.seed < 0:
            raise ShardError(f"seed must be non-negative, got {self.seed}")
        if self.shard_size_mb is not None and self.clips_per_shard is not None:
            raise ShardError("give a shard size in MB or a clip count per shard, not both")
        if self.shard_size_mb is None and self.clips_per_shard is None:
            object.__setattr__(self, "shard_size_mb", DEFAULT_SHARD_MB)
        if self.shard_size_mb is not None and self.shard_size_mb <= 0:
            raise ShardError(f"shard size must be positive, got {self.shard_size_mb} MB")
        if self.clips_per_shard is not None and self.clips_per_shard < 1:
            raise ShardError(f"clips per shard must be at least 1, got {self.clips_per_shard}")


def shard_name(split: str, number: int) -> str:
    return f"{split}-{number:06d}.tar"


def index_name(split: str) -> str:
    return f"{split}-index.json"


def write_shards(dataset_root: str | Path, out: str | Path, options: ShardOptions, overwrite: bool = False,
                 progress: bool = False) -> dict[str, Any]:
    """Shard ``options.split`` of a dataset folder into ``out``; resumes an interrupted run. Returns the index.

    Unreadable clips (missing, empty, corrupt audio) are left out and listed in the index's ``skipped``.
    """
    from tqdm import tqdm

    dataset = Dataset.open(dataset_root)
    ids = dataset.split(options.split)
    if not ids:
        raise ShardError(f"{dataset.root}: split '{options.split}' has no clips")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ShardError(f"{out}: exists and is not a folder")
    order = [ids[k] for k in np.random.default_rng(options.seed).permutation(len(ids))]
    fingerprint = {"format": SHARDS_FORMAT, **asdict(options),
                   "annotations_sha256": sha256_file(dataset.root / "annotations.json"),
                   "split_sha256": sha256_file(dataset.root / "splits" / f"{options.split}.csv")}
    state = _resume_state(out, options.split, fingerprint, overwrite, order)
    limit = None if options.shard_size_mb is None else int(options.shard_size_mb * 1e6)
    samples = (_encoded_sample(dataset, clip_id, position, options.keep_original, state["skipped"])
               for position, clip_id in enumerate(order) if position >= state["next"])
    samples = (sample for sample in samples if sample is not None)
    bar = tqdm(total=len(order), initial=state["next"], desc=f"sharding {options.split}", unit="clip",
               disable=not progress)
    pending = next(samples, None)
    while pending is not None:
        name = shard_name(options.split, len(state["shards"]))
        count, size = 0, TAR_END
        with atomic_path(out / name) as temporary:
            with open(temporary, "wb") as handle, TarWriter(handle, encoder=False, user="bisep", group="bisep",
                                                           mtime=MEMBER_TIME) as writer:
                while pending is not None and (count == 0 or _fits(count, size, pending, options, limit)):
                    writer.write(pending["members"])
                    count, size = count + 1, size + pending["size"]
                    pending = next(samples, None)
                    bar.update((pending["position"] if pending else len(order)) - bar.n)
        state["next"] = pending["position"] if pending is not None else len(order)
        state["shards"].append({"name": name, "clips": count, "bytes": (out / name).stat().st_size,
                                "sha256": sha256_file(out / name), "end": state["next"]})
        write_json_atomic(_state_path(out, options.split), state)
    bar.close()
    state["next"] = len(order)
    _remove_shards(out, options.split, keep=len(state["shards"]))
    if not state["shards"]:
        raise ShardError(f"{dataset.root}: no clip of split '{options.split}' is readable "
                         f"(first: {next(iter(state['skipped'].values()))})")
    records = [dataset.clips[clip_id] for clip_id in order if clip_id not in state["skipped"]]
    index = {
        "format": SHARDS_FORMAT,
        "split": options.split,
        "options": fingerprint,
        "sample_rate": dataset.sample_rate,
        "clips": sum(shard["clips"] for shard in state["shards"]),
        "single_source": all(len(r["labels"]) <= 1 and len(r["phrases"]) <= 1 for r in records),
        "shards": [{key: shard[key] for key in ("name", "clips", "bytes", "sha256")} for shard in state["shards"]],
        "skipped": state["skipped"],
    }
    write_json_atomic(_state_path(out, options.split), state)
    write_json_atomic(out / index_name(options.split), index)
    return index


@dataclass(frozen=True)
class ShardIndex:
    """A split's shard index (``<split>-index.json``), read and checked against the shards on disk."""

    folder: Path
    split: str
    sample_rate: int
    clips: int
    single_source: bool
    shards: tuple[dict[str, Any], ...]

    @classmethod
    def open(cls, folder: str | Path, split: str) -> "ShardIndex":
        folder = Path(folder)
        path = folder / index_name(split)
        if not path.is_file():
            raise ShardError(f"{path}: not found (make it with: bisep data shard DATASET --out {folder} "
                             f"--split {split})")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ShardError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(data, dict) or data.get("format") != SHARDS_FORMAT:
            raise ShardError(f"{path}: unknown shard index format (expected {SHARDS_FORMAT})")
        shards = data.get("shards")
        if not isinstance(shards, list) or not shards:
            raise ShardError(f"{path}: lists no shards")
        for shard in shards:
            name = shard.get("name") if isinstance(shard, dict) else None
            if not isinstance(name, str) or not _NAME.fullmatch(name) or not name.endswith(".tar"):
                raise ShardError(f"{path}: bad shard entry {shard!r}")
            file = folder / name
            if not file.is_file():
                raise ShardError(f"{file}: shard listed in {path.name} is missing")
            if file.stat().st_size != shard.get("bytes"):
                raise ShardError(f"{file}: {file.stat().st_size} bytes, the index says {shard.get('bytes')} "
                                 "(changed or cut short)")
        return cls(folder, split, int(data["sample_rate"]), int(data["clips"]), bool(data["single_source"]),
                   tuple(shards))


@dataclass(frozen=True)
class ShardSample:
    """One clip read from a shard: ``where`` (``shard.tar:key``) names it in messages and failure counts."""

    where: str
    record: dict[str, Any]
    audio: bytes
    extension: str

    def decode(self, sample_rate: int) -> torch.Tensor:
        """``(samples,)`` float32 mono at ``sample_rate``; :class:`~bisep.errors.AudioError` when corrupt."""
        return load_audio(_named(self.audio, f"{self.where}.{self.extension}"), sample_rate=sample_rate,
                          channels=1)[0][0]


def read_shard(path: Path, on_error: Callable[[str, str], None]) -> Iterator[ShardSample]:
    """The samples of one shard in order. A sample without readable metadata or audio, or a tar that breaks
    off, is reported as ``on_error(where, message)`` and reading goes on with what can still be read."""

    def handler(error: Exception) -> bool:
        on_error(str(path), f"{path}: corrupt tar data ({type(error).__name__}: {str(error).splitlines()[0]})")
        return True

    with open(path, "rb") as stream:
        members = tar_file_expander([{"url": str(path), "stream": stream}], handler=handler)
        for sample in group_by_keys(members, handler=handler):
            where = f"{path}:{sample['__key__']}"
            audio = [key for key in sample if not key.startswith("__") and f".{key}" in READABLE_SUFFIXES]
            try:
                record = json.loads(sample["json"]) if "json" in sample else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                record = None
            if not isinstance(record, dict) or not all(k in record for k in ("id", "caption", "phrases", "labels")):
                on_error(where, f"{where}: missing or corrupt metadata (.json)")
            elif len(audio) != 1:
                on_error(where, f"{where}: expected one audio member, found {len(audio)}")
            else:
                yield ShardSample(where, record, sample[audio[0]], audio[0])


def _fits(count: int, size: int, sample: dict[str, Any], options: ShardOptions, limit: int | None) -> bool:
    if options.clips_per_shard is not None:
        return count < options.clips_per_shard
    return size + sample["size"] <= limit


def _encoded_sample(dataset: Dataset, clip_id: str, position: int, keep_original: bool,
                    skipped: dict[str, str]) -> dict[str, Any] | None:
    """The tar members of one clip and their size in the tar; None (and the reason in ``skipped``) if its audio
    cannot be read."""
    path = dataset.audio_path(clip_id)
    try:
        if not path.is_file():
            raise AudioError(f"{path}: file not found")
        raw = path.read_bytes()
        load_audio(_named(raw, str(path)))
        extension = path.suffix.lower().lstrip(".") or "wav"
        info = soundfile.info(io.BytesIO(raw))
        if not keep_original and info.format != "FLAC" and info.subtype in FLAC_SUBTYPES:
            samples, rate = soundfile.read(io.BytesIO(raw), dtype="int32", always_2d=True)
            encoded = io.BytesIO()
            soundfile.write(encoded, samples, rate, format="FLAC", subtype=info.subtype)
            raw, extension = encoded.getvalue(), "flac"
    except (AudioError, OSError, soundfile.LibsndfileError) as error:
        skipped[clip_id] = str(error) if isinstance(error, AudioError) else f"{path}: {error}"
        return None
    record = {key: value for key, value in dataset.clips[clip_id].items() if key != "audio"}
    metadata = json.dumps({**record, "id": clip_id}, sort_keys=True, ensure_ascii=False).encode("utf-8")
    key = f"{position:09d}"
    members = {"__key__": key, "json": metadata, extension: raw}
    size = sum(TAR_BLOCK + -(-len(value) // TAR_BLOCK) * TAR_BLOCK for value in (metadata, raw))
    return {"members": members, "size": size, "position": position}


def _named(data: bytes, name: str) -> io.BytesIO:
    """Bytes as a file object whose ``name`` the audio errors quote."""
    stream = io.BytesIO(data)
    stream.name = name
    return stream


def _state_path(out: Path, split: str) -> Path:
    return out / STATE_FOLDER / f"{split}.json"


def _shard_files(out: Path, split: str) -> list[Path]:
    pattern = re.compile(re.escape(split) + r"-\d{6}\.tar")
    return sorted(p for p in out.iterdir() if pattern.fullmatch(p.name)) if out.is_dir() else []


def _remove_shards(out: Path, split: str, keep: int = 0) -> None:
    """Shards numbered ``keep`` and above, and temporaries an interrupted run left behind."""
    temporary = re.compile(r"\." + re.escape(split) + r"-\d{6}\.tar\..*\.tmp\.tar")
    for path in _shard_files(out, split)[keep:]:
        path.unlink()
    if out.is_dir():
        for path in out.iterdir():
            if temporary.fullmatch(path.name):
                path.unlink()


def _resume_state(out: Path, split: str, fingerprint: dict[str, Any], overwrite: bool,
                  order: list[str]) -> dict[str, Any]:
    """The finished shards to keep (a fresh state when none), after clearing what cannot be kept.

    ``next`` is the position in ``order`` where sharding goes on; ``skipped`` the unreadable clips before it.
    """
    state_path = _state_path(out, split)
    state = None
    if state_path.is_file() and not overwrite:
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ShardError(f"{state_path}: not valid JSON; pass --overwrite to shard again") from None
        if not isinstance(state, dict) or state.get("options") != fingerprint:
            raise ShardError(f"{out}: holds shards of split '{split}' made with other options or from another "
                             "dataset; pass --overwrite to replace them")
    elif (_shard_files(out, split) or (out / index_name(split)).exists()) and not overwrite:
        raise ShardError(f"{out}: holds shards of split '{split}' that this command did not record; "
                         "pass --overwrite to replace them")
    (out / index_name(split)).unlink(missing_ok=True)
    if state is None:
        _remove_shards(out, split)
        state_path.unlink(missing_ok=True)
        return {"options": fingerprint, "shards": [], "skipped": {}, "next": 0}
    kept = 0
    for shard in state["shards"]:
        path = out / shard["name"]
        if not path.is_file() or path.stat().st_size != shard["bytes"]:
            break
        kept += 1
    state["shards"] = state["shards"][:kept]
    state["next"] = state["shards"][-1]["end"] if kept else 0
    before = set(order[:state["next"]])
    state["skipped"] = {clip_id: why for clip_id, why in state["skipped"].items() if clip_id in before}
    _remove_shards(out, split, keep=kept)
    return state
