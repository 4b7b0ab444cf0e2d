"""What the AudioCaps, VGGSound and MUSIC preparation (``bisep data ...``) share: find the files a user
downloaded, convert them to the training format in parallel and resumably, and write the dataset folder.

A dataset module turns its lists (CSV, folder names) into a :class:`Plan`: one :class:`Job` per source file
(or per missing one) and the annotation fields of its clips. :func:`prepare` does the rest. Nothing here
downloads; :func:`missing_fetch_ids` says what a user still has to fetch.

Clips are 16 kHz mono 16-bit wav files at ``audio/<split>/<id>.wav``. A source longer than its clip by more
than a second is taken to be the whole video and cut at the clip's start time. Sources libsndfile cannot read
(mp4, m4a, webm, ...) are decoded with ``ffmpeg`` from PATH. Unreadable sources are skipped and listed as
corrupt; clips whose peak is below -60 dBFS (failed downloads, silent stretches) are dropped.

Resumability and atomicity. A real dataset takes hours to convert, so an interrupted run must not start over;
the clips are therefore written straight into the output folder, each file atomically (a reader never sees
half a file), and each finished source is appended to ``.bisep-prepare/converted.jsonl``. A re-run reads that
journal, checks each listed clip's header (rate, channels, 16-bit, length) and converts only sources that are
new or whose clips are gone or damaged; delete a clip to have it converted again. ``annotations.json``, the
split and composition lists, ``manifest.json`` and ``report.json`` are written last, each atomically: an
interrupted first run leaves no ``annotations.json`` (no dataset yet), an interrupted re-run leaves the
previous annotations, whose clips are all still there.

Which output folder is used: a missing or empty folder is prepared; a folder whose
``.bisep-prepare/state.json`` names the same dataset and the same layout options (those that decide where a
clip goes, such as the split seed) is resumed or updated, e.g. after more downloads; anything else is refused
unless ``overwrite``, which deletes the folder first (only once the inputs have been checked).
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile

from bisep.version import __version__
from bisep.audio import (READABLE_SUFFIXES, CorruptAudio, EmptyAudio, load_audio, peak_db, prepare_waveform,
                         save_audio)
from bisep.data.format import ANNOTATIONS_FORMAT, write_dataset
from bisep.data.phrases import normalise_phrase
from bisep.errors import AudioError, BisepError
from bisep.files import write_json_atomic, write_text_atomic

SAMPLE_RATE = 16000
MEDIA_SUFFIXES = (".m4a", ".aac", ".mp4", ".m4v", ".mkv", ".webm", ".mov", ".avi")
SOURCE_SUFFIXES = READABLE_SUFFIXES + MEDIA_SUFFIXES
SILENT_PEAK_DB = -60.0
WHOLE_VIDEO_MARGIN_SECONDS = 1.0
STATE_FOLDER = ".bisep-prepare"
_COMPOSITION_TRIES = 100


@dataclass(frozen=True)
class Job:
    """One source file to convert: into the clip ``audio/<split>/<name>.wav`` or, with ``cut``, into
    consecutive clips of ``clip_seconds`` named ``<name>_<k>`` (a long recording). ``source`` is None when no
    file was found; ``fetch_id`` is what the user downloads to provide it."""

    split: str
    name: str
    source: str | None
    fetch_id: str
    clip_seconds: float
    start: float = 0.0
    cut: bool = False

    @property
    def key(self) -> str:
        return f"{self.split}/{self.name}"


@dataclass
class Plan:
    """Everything a dataset module decides; :func:`prepare` converts and writes.

    ``records`` and ``conflicts`` are keyed by :attr:`Job.key`: the annotation fields its clips share (caption,
    phrases, labels, ...) and what two clips of one composition must not share (a class, a phrase).
    ``compositions`` maps a list name to ``(split, clips per mixture, rounds over the split)``. ``layout`` holds
    the options that decide where a clip goes (a resume must match them); ``options`` all options, for the
    manifest; ``inputs`` the list files read (name -> SHA-256); ``notes`` dataset-specific counts for the report.
    """

    dataset: str
    splits: tuple[str, ...]
    jobs: list[Job]
    records: dict[str, dict[str, Any]]
    conflicts: dict[str, frozenset[str]]
    compositions: dict[str, tuple[str, int, int]]
    options: dict[str, Any]
    layout: dict[str, Any]
    seed: int
    inputs: dict[str, str] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


def class_prompt(label: str) -> str:
    """The method's prompt for a single-class clip."""
    return f"The sound of {label}"


def phrase_key(phrase: str) -> str:
    """Phrases naming one source compare equal ("a dog barks", "the dog barks"), as in ``dedupe_phrases``."""
    return re.sub(r"^(?:a|an|the) ", "", normalise_phrase(phrase))


def stable_fraction(seed: int, name: str) -> float:
    """A number in [0, 1) fixed by ``seed`` and ``name`` alone, so a clip's split does not change when other
    clips are added or removed."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def start_text(start: float) -> str:
    """A start time as in VGGSound file names: whole seconds zero-padded to 6 digits, else with 3 decimals."""
    return f"{int(start):06d}" if float(start).is_integer() else f"{start:010.3f}"


def youtube_stems(youtube_id: str, start: float, seconds: float, bare: bool) -> list[str]:
    """File stems under which downloaders save a YouTube segment: ``<id>_<start>``, ``<id>_<start>_<end>`` with
    seconds as ``30``, ``000030``, ``30.0``, ``30.000`` or milliseconds ``30000``, each also with the AudioSet
    ``Y`` prefix, and, when ``bare`` (the id names one segment only), ``<id>`` and ``Y<id>``."""
    end = start + seconds

    def forms(value: float) -> list[str]:
        whole = [f"{int(value)}", f"{int(value):06d}"] if float(value).is_integer() else [f"{value:g}"]
        return [*whole, f"{value:.1f}", f"{value:.3f}", f"{round(value * 1000)}"]

    bodies = [f"{youtube_id}_{text}" for text in forms(start)]
    bodies += [f"{youtube_id}_{a}_{b}" for a, b in zip(forms(start), forms(end))]
    if bare:
        bodies.append(youtube_id)
    return list(dict.fromkeys(stem for body in bodies for stem in (body, f"Y{body}")))


def index_audio(folder: Path) -> dict[str, Path]:
    """Every source file under ``folder`` by stem, found in one walk. Where stems repeat, a file libsndfile reads
    wins over a video, then the earlier suffix in :data:`SOURCE_SUFFIXES`, then the first path in sorted order.
    Hidden entries and folders prepared by bisep (an output inside the download folder) are skipped."""
    rank = {suffix: position for position, suffix in enumerate(SOURCE_SUFFIXES)}
    best: dict[str, tuple[int, str]] = {}
    for root, folders, files in os.walk(folder, followlinks=True):
        folders[:] = sorted(name for name in folders
                            if not name.startswith(".") and not (Path(root, name, STATE_FOLDER)).is_dir())
        for name in sorted(files):
            suffix = os.path.splitext(name)[1].lower()
            if name.startswith(".") or suffix not in rank:
                continue
            stem = name[: -len(suffix)]
            candidate = (rank[suffix], os.path.join(root, name))
            if stem not in best or candidate[0] < best[stem][0]:
                best[stem] = candidate
    return {stem: Path(path) for stem, (_, path) in best.items()}


def find_source(index: dict[str, Path], stems: Iterable[str]) -> str | None:
    for stem in stems:
        if stem in index:
            return str(index[stem])
    return None


def require_folder(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise BisepError(f"{path}: {what} not found" if not path.exists() else f"{path}: {what} is not a folder")
    return path


def read_csv_rows(path: Path, columns: tuple[str, ...] | None = None) -> list[tuple[int, Any]]:
    """``(line number, row)`` pairs: dicts checked for ``columns`` when given, else lists (a header-less CSV)."""
    if not Path(path).is_file():
        raise BisepError(f"{path}: CSV file not found")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            if columns is None:
                reader = csv.reader(handle)
                return [(reader.line_num, row) for row in reader if row]
            reader = csv.DictReader(handle)
            missing = [column for column in columns if column not in (reader.fieldnames or [])]
            if missing:
                raise BisepError(f"{path}: missing column(s) {', '.join(missing)} "
                                 f"(expected a header with {', '.join(columns)})")
            return [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError:
        raise BisepError(f"{path}: not a UTF-8 text CSV file") from None
    except csv.Error as error:
        raise BisepError(f"{path}: malformed CSV ({error})") from None


def require_ffmpeg(sources: Iterable[str]) -> None:
    """Fail before any work when a source needs ffmpeg and there is none."""
    videos = [source for source in sources if Path(source).suffix.lower() not in READABLE_SUFFIXES]
    if videos and shutil.which("ffmpeg") is None:
        raise BisepError(f"{len(videos)} source files are video or AAC (e.g. {videos[0]}); extracting their audio "
                         "needs ffmpeg: install it (e.g. apt-get install ffmpeg) and put it on PATH")


def decode(path: Path) -> np.ndarray:
    """A source file as ``(samples,)`` float32 mono at 16 kHz; formats libsndfile cannot read go through ffmpeg."""
    if path.suffix.lower() in READABLE_SUFFIXES:
        return load_audio(path, SAMPLE_RATE, channels=1)[0][0].numpy()
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE),
               "-f", "f32le", "-"]
    result = subprocess.run(command, capture_output=True)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise CorruptAudio(f"{path}: ffmpeg cannot decode it ({message[-1] if message else result.returncode})")
    samples = np.frombuffer(result.stdout, np.float32).copy()  # writable, as torch wants
    if samples.size == 0:
        raise EmptyAudio(f"{path}: no audio stream")
    return prepare_waveform(samples, SAMPLE_RATE, name=str(path))[0].numpy()


def convert(task: tuple[Job, str, list[dict] | None]) -> dict[str, Any]:
    """Convert one job (runs in worker processes). ``previous``: the clips an earlier run wrote for it; kept
    when all are still valid. Returns ``{"key", "status", "clips" | "error", "silent"}`` with status
    converted, kept, missing, corrupt or unusable."""
    job, out, previous = task
    root = Path(out)
    if previous is not None and all(_valid_clip(root, clip) for clip in previous):
        return {"key": job.key, "status": "kept", "clips": previous}
    if job.source is None:
        return {"key": job.key, "status": "missing"}
    try:
        audio = decode(Path(job.source))
    except AudioError as error:
        return {"key": job.key, "status": "corrupt", "error": str(error)}
    pieces, reason = _pieces(job, audio)
    clips, silent = [], 0
    for clip_id, start, piece in pieces:
        if peak_db(piece) < SILENT_PEAK_DB:
            silent += 1
            continue
        path = f"audio/{job.split}/{clip_id}.wav"
        save_audio(root / path, piece, SAMPLE_RATE)
        clip = {"id": clip_id, "audio": path, "frames": int(piece.size)}
        clips.append({**clip, "start": start} if job.cut else clip)
    if not clips:
        reason = reason or f"silent (peak below {SILENT_PEAK_DB:.0f} dBFS)"
        return {"key": job.key, "status": "unusable", "error": f"{job.source}: {reason}"}
    return {"key": job.key, "status": "converted", "clips": clips, "silent": silent}


def _pieces(job: Job, audio: np.ndarray) -> tuple[list[tuple[str, float, np.ndarray]], str]:
    """The clips of a decoded source as ``(id, start in seconds, samples)``, or none and why."""
    length = round(job.clip_seconds * SAMPLE_RATE)
    if job.cut:
        count = audio.size // length
        if count == 0:
            return [], f"shorter than one clip ({audio.size / SAMPLE_RATE:.1f} s < {job.clip_seconds:g} s)"
        return [(f"{job.name}_{k:04d}", round(k * job.clip_seconds, 3), audio[k * length:(k + 1) * length])
                for k in range(count)], ""
    if audio.size > length + WHOLE_VIDEO_MARGIN_SECONDS * SAMPLE_RATE:
        start = round(job.start * SAMPLE_RATE)
        audio = audio[start:start + length]
        if audio.size == 0:
            return [], f"a whole video that ends before the clip's start ({job.start:g} s)"
    return [(job.name, 0.0, audio)], ""


def _valid_clip(root: Path, clip: dict) -> bool:
    try:
        info = soundfile.info(root / clip["audio"])
    except (RuntimeError, OSError):
        return False
    return (info.samplerate == SAMPLE_RATE and info.channels == 1 and info.subtype == "PCM_16"
            and info.frames == clip["frames"])


def missing_fetch_ids(plan: Plan, out: Path | None = None) -> list[str]:
    """What a user still has to download, in list order: sources not found and, when ``out`` holds a
    preparation of this plan, not converted there before."""
    done = _read_journal(out) if out is not None and _read_state(out) == _state(plan) else {}
    return list(dict.fromkeys(job.fetch_id for job in plan.jobs if job.source is None and job.key not in done))


def prepare(plan: Plan, out: str | Path, jobs: int = 1, overwrite: bool = False,
            progress: bool = True) -> dict[str, Any]:
    """Convert the plan's sources into ``out`` and write the dataset (see the module docstring); returns the
    report that is also written to ``out/report.json``."""
    out = Path(out)
    resume = _check_output(out, plan, overwrite)
    previous = _read_journal(out) if resume else {}
    if not previous and not any(job.source for job in plan.jobs):
        raise BisepError(f"no audio file found for any of the {len(plan.jobs)} {plan.dataset} sources; check the "
                         f"audio folder and the file names (bisep data {plan.dataset} --help)")
    require_ffmpeg(job.source for job in plan.jobs if job.source)
    _start_output(out, plan, resume)
    journal = out / STATE_FOLDER / "converted.jsonl"
    write_text_atomic(journal, "".join(_journal_line(key, clips) for key, clips in previous.items()))
    tasks = [(job, str(out), previous.get(job.key)) for job in plan.jobs]
    results = _convert_all(tasks, journal, jobs, progress)
    write_text_atomic(journal, "".join(
        _journal_line(result["key"], result["clips"]) for result in results.values() if "clips" in result))

    clips, splits, conflicts = _clips(plan, results)
    compositions = {}
    for name, (split, size, rounds) in plan.compositions.items():
        rng = np.random.default_rng([plan.seed, zlib.crc32(name.encode())])
        rows = compose(splits[split], conflicts, size, rounds, rng)
        if rows:
            compositions[name] = rows
    stats = {split: _split_stats([clips[clip_id] for clip_id in ids]) for split, ids in splits.items()}
    manifest = {
        "generator": f"bisep data {plan.dataset}",
        "bisep_version": __version__,
        "annotations_format": ANNOTATIONS_FORMAT,
        "options": plan.options,
        "inputs": plan.inputs,
        "stats": stats,
    }
    write_dataset(out, clips, splits, compositions, manifest, SAMPLE_RATE)
    report = _report(plan, results, stats, compositions)
    write_json_atomic(out / "report.json", report)
    return report


def compose(ids: list[str], conflicts: dict[str, frozenset[str]], size: int, rounds: int,
            rng: np.random.Generator) -> list[list[str]]:
    """Test mixtures of ``size`` clips: ``rounds`` passes over ``ids`` in random order, each clip joined by random
    partners sharing no conflict key (class, phrase) with any member. A clip that finds no such partners in
    100 draws is left out of that round."""
    rows = []
    if len(ids) < size:
        return rows
    for _ in range(rounds):
        for anchor in rng.permutation(len(ids)):
            members = [ids[anchor]]
            taken = set(conflicts[ids[anchor]])
            for _ in range(_COMPOSITION_TRIES):
                if len(members) == size:
                    break
                candidate = ids[int(rng.integers(len(ids)))]
                if candidate not in members and not taken & conflicts[candidate]:
                    members.append(candidate)
                    taken |= conflicts[candidate]
            if len(members) == size:
                rows.append(members)
    return rows


def summary_lines(report: dict[str, Any], out: Path) -> list[str]:
    """The printed summary of a report."""
    sources = report["sources"]
    clips = ", ".join(f"{split} {count}" for split, count in report["clips"].items())
    lines = [
        f"prepared {report['dataset']} in {out}: {sum(report['clips'].values())} clips ({clips})",
        f"sources: {sources['listed']} listed, {sources['found']} found, {sources['missing']} missing, "
        f"{sources['corrupt']} corrupt, {sources['unusable']} unusable; {sources['converted']} converted now, "
        f"{sources['kept']} kept from an earlier run",
    ]
    histogram = report["phrases_per_caption"]
    total = sum(histogram.values()) or 1
    lines.append("phrases per caption: " + ", ".join(
        f"{count}: {clips_with} ({clips_with / total:.0%})" for count, clips_with in histogram.items()))
    lines.append("compositions: " + (", ".join(f"{name} {rows}" for name, rows in report["compositions"].items())
                                     or "none (too few clips)"))
    for entry in report["corrupt"][:3] + report["unusable"][:3]:
        lines.append(f"skipped {entry['id']}: {entry['error']}")
    if sources["missing"] or sources["corrupt"] or sources["unusable"]:
        lines.append(f"all skipped sources are listed in {out / 'report.json'}; "
                     f"--list-missing prints the ones to fetch")
    return lines


def _state(plan: Plan) -> dict[str, Any]:
    return {"dataset": plan.dataset, "layout": plan.layout, "sample_rate": SAMPLE_RATE}


def _read_state(out: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out / STATE_FOLDER / "state.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _check_output(out: Path, plan: Plan, overwrite: bool) -> bool:
    """Whether ``out`` holds an earlier preparation of this plan to resume; raises when it may not be used."""
    if out.exists() and not out.is_dir():
        raise BisepError(f"{out}: exists and is not a folder")
    if not out.exists() or not any(out.iterdir()) or overwrite:
        return False
    earlier = _read_state(out)
    if earlier is None or earlier.get("dataset") != plan.dataset:
        raise BisepError(f"{out}: exists and is not empty (pass --overwrite to replace it)")
    state = _state(plan)
    if earlier != state:
        before = earlier.get("layout", {})
        changed = [f"{key} {before.get(key)} -> {value}"
                   for key, value in state["layout"].items() if before.get(key) != value]
        raise BisepError(f"{out}: was prepared with other options ({', '.join(changed) or 'sample rate'}); "
                         "pass --overwrite to start again")
    return True


def _start_output(out: Path, plan: Plan, resume: bool) -> None:
    try:
        if not resume and out.is_dir() and any(out.iterdir()):
            retired = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(retired)
            shutil.rmtree(retired)
        (out / STATE_FOLDER).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BisepError(f"{out}: cannot write there ({error.strerror or error})") from None
    for stale in out.glob("audio/*/.*.tmp.wav"):  # left by a run that was killed mid-write
        stale.unlink()
    write_json_atomic(out / STATE_FOLDER / "state.json", _state(plan))


def _read_journal(out: Path) -> dict[str, list[dict]]:
    path = out / STATE_FOLDER / "converted.jsonl"
    if not path.is_file():
        return {}
    entries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # the last line of a run that was killed mid-write
            continue
        entries[entry["key"]] = entry["clips"]
    return entries


def _journal_line(key: str, clips: list[dict]) -> str:
    return json.dumps({"key": key, "clips": clips}, sort_keys=True) + "\n"


def _convert_all(tasks: list, journal_path: Path, jobs: int, progress: bool) -> dict[str, dict]:
    """Run :func:`convert` over ``tasks`` (in ``jobs`` processes), journaling each conversion as it finishes."""
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="converting", unit="file", disable=not progress, file=sys.stderr)
    results = {}
    with open(journal_path, "a", encoding="utf-8") as journal:
        if jobs <= 1:
            _collect(map(convert, tasks), results, journal, bar)
        else:
            context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
            with context.Pool(jobs) as pool:
                _collect(pool.imap_unordered(convert, tasks, chunksize=8), results, journal, bar)
    bar.close()
    return results


def _collect(stream: Iterable[dict], results: dict, journal, bar) -> None:
    for result in stream:
        results[result["key"]] = result
        if result["status"] == "converted":
            journal.write(_journal_line(result["key"], result["clips"]))
            journal.flush()
        bar.update()


def _clips(plan: Plan, results: dict[str, dict]) -> tuple[dict, dict[str, list[str]], dict[str, frozenset]]:
    """Annotation records, split id lists and conflict keys of the clips the conversion produced."""
    clips, splits, conflicts = {}, {split: [] for split in plan.splits}, {}
    for job in plan.jobs:
        for clip in results[job.key].get("clips", []):
            record = {**plan.records[job.key], "id": clip["id"], "audio": clip["audio"],
                      "duration": round(clip["frames"] / SAMPLE_RATE, 4)}
            if "start" in clip:
                record["start"] = clip["start"]
            clips[clip["id"]] = record
            splits[job.split].append(clip["id"])
            conflicts[clip["id"]] = plan.conflicts[job.key]
    return clips, splits, conflicts


def _split_stats(records: list[dict]) -> dict[str, Any]:
    stats = {
        "clips": len(records),
        "hours": round(sum(record["duration"] for record in records) / 3600, 3),
        "phrases_per_caption": dict(sorted(Counter(len(record["phrases"]) for record in records).items())),
    }
    labels = Counter(label for record in records for label in record["labels"])
    if labels:
        stats["clips_per_label"] = dict(sorted(labels.items()))
    return stats


def _report(plan: Plan, results: dict[str, dict], stats: dict, compositions: dict) -> dict[str, Any]:
    jobs = {job.key: job for job in plan.jobs}
    by_status: dict[str, list[dict]] = {}
    for key, result in results.items():
        by_status.setdefault(result["status"], []).append(result)

    def failures(status: str) -> list[dict]:
        return sorted(({"id": jobs[r["key"]].name, "split": jobs[r["key"]].split, "error": r["error"]}
                       for r in by_status.get(status, [])), key=lambda entry: (entry["split"], entry["id"]))

    missing = [job.fetch_id for job in plan.jobs if results[job.key]["status"] == "missing"]
    histogram: Counter = Counter()
    for split_stats in stats.values():
        histogram.update(split_stats["phrases_per_caption"])
    return {
        "dataset": plan.dataset,
        "sources": {
            "listed": len(plan.jobs),
            "found": len(plan.jobs) - len(missing),
            "missing": len(missing),
            "corrupt": len(by_status.get("corrupt", [])),
            "unusable": len(by_status.get("unusable", [])),
            "converted": len(by_status.get("converted", [])),
            "kept": len(by_status.get("kept", [])),
        },
        "silent_clips_dropped": sum(r.get("silent", 0) for r in by_status.get("converted", [])),
        "clips": {split: split_stats["clips"] for split, split_stats in stats.items()},
        "phrases_per_caption": dict(sorted(histogram.items())),
        "compositions": {name: len(rows) for name, rows in compositions.items()},
        "notes": plan.notes,
        "missing": missing,
        "corrupt": failures("corrupt"),
        "unusable": failures("unusable"),
    }
