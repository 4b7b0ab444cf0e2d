"""The built-in corpus: captioned natural mixtures rendered offline, with the ground truth real data lacks.

Building happens in two phases. Planning draws every random choice (classes, phrasings, timing, levels,
melodies, sentences, acoustics) sequentially from the seed, and keeps renders, melodies and sentences disjoint
across splits. Rendering is a pure function of each clip's plan and runs in worker processes, so the same seed
gives byte-identical files whatever ``jobs`` is. The corpus is written into a hidden folder beside the target
and renamed into place at the end: a failed or interrupted build leaves nothing half-written.

Splits (see ``docs/data-format.md``): ``grounding`` (1-3 sources, for the built-in audio-language model),
``train`` (natural mixtures of 2-3 sources: no single-source clip, so the weak and unsupervised settings never
see one), ``train_sup`` (single sources for the supervised baselines), ``valid`` and ``test`` (single sources,
plus composition lists of 2, 3 and 4 clips of different classes).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bisep.version import __version__
from bisep.audio import save_audio
from bisep.data.acoustics import (apply_mixture_acoustics, apply_source_acoustics, plan_mixture_acoustics,
                                  plan_source_acoustics)
from bisep.data.captions import CaptionSource, compose_caption
from bisep.data.format import ANNOTATIONS_FORMAT, write_dataset
from bisep.data.sources import RenderResources, SoundClass, field_recordings, renderers
from bisep.errors import BisepError, SourceUnavailable
from bisep.files import replace_folder, sha256_file, slug

SINGLE_SOURCE_SPLITS = ("train_sup", "valid", "test")


@dataclass(frozen=True)
class SplitSize:
    """Clips per split; single-source splits count per class so every class is equally represented."""

    grounding: int
    train: int
    train_sup_per_class: int
    valid_per_class: int
    test_per_class: int
    valid_compositions: dict[int, int]
    test_compositions: dict[int, int]


SIZES = {
    "tiny": SplitSize(120, 48, 2, 1, 2, {2: 20}, {2: 40, 3: 20, 4: 10}),
    "small": SplitSize(2000, 2000, 40, 8, 20, {2: 200}, {2: 1000, 3: 500, 4: 300}),
    "medium": SplitSize(8000, 10000, 150, 20, 40, {2: 500}, {2: 2000, 3: 1000, 4: 500}),
}
SOURCES_PER_CLIP = {"grounding": ((1, 2, 3), (0.4, 0.4, 0.2)), "train": ((2, 3), (0.7, 0.3))}
REFERENCE_RMS_DB = -20.0
ACOUSTICS = ("realistic", "dry")

# the options that decide what a corpus sounds like (not whether stems were written beside it)
WORLD_OPTIONS = ("size", "seed", "sample_rate", "clip_seconds", "acoustics", "reverb_probability", "noise_probability")


def corpus_world(manifest: dict[str, Any]) -> dict[str, Any]:
    """What a model trained on a corpus has heard, from the corpus's manifest: the options that shape its sound
    and the soundfonts, recorded banks and field-recording packages it was voiced with. Recorded in a grounding
    model's provenance, so the benchmark can tell whether a corpus is the one that model was trained on."""
    options = manifest.get("options", {})
    return {"options": {key: options.get(key) for key in WORLD_OPTIONS},
            "soundfonts": dict(sorted(manifest.get("soundfonts", {}).items())),
            "sample_banks": sorted(manifest.get("sample_banks", {})),
            "field_recordings": sorted(manifest.get("field_recordings", {}))}


@dataclass(frozen=True)
class CorpusOptions:
    size: str = "small"
    seed: int = 0
    sample_rate: int = 16000
    clip_seconds: float = 4.0
    with_stems: bool = False
    acoustics: str = "realistic"  # or "dry": the renders as they are, no room, microphone, noise or codec
    reverb_probability: float = 0.8
    noise_probability: float = 0.6

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise BisepError(f"unknown corpus size '{self.size}' (known: {', '.join(SIZES)})")
        if not 8000 <= self.sample_rate <= 48000:
            raise BisepError(f"sample rate must be 8000-48000 Hz, got {self.sample_rate}")
        if not 2.0 <= self.clip_seconds <= 30.0:
            raise BisepError(f"clip length must be 2-30 s, got {self.clip_seconds}")
        if self.acoustics not in ACOUSTICS:
            raise BisepError(f"unknown acoustics '{self.acoustics}' (known: {', '.join(ACOUSTICS)})")

    def source_acoustics(self, rng: np.random.Generator) -> dict:
        realistic = self.acoustics == "realistic"
        return plan_source_acoustics(rng, room_probability=self.reverb_probability * realistic,
                                     colour_probability=0.7 * realistic, dynamics_probability=0.3 * realistic)

    def mixture_acoustics(self, rng: np.random.Generator) -> dict:
        realistic = self.acoustics == "realistic"
        return plan_mixture_acoustics(rng, band_limit_probability=0.2 * realistic,
                                      noise_probability=self.noise_probability * realistic,
                                      codec_probability=0.3 * realistic)


@dataclass(frozen=True)
class CorpusClass:
    sound: SoundClass
    renderer: str


def available_classes(resources: RenderResources) -> tuple[list[CorpusClass], dict[str, str]]:
    """Every class whose family renders here, and a reason for each family that does not."""
    classes, skipped = [], {}
    for name, module in renderers().items():
        reason = module.unavailable_reason(resources)
        if reason:
            skipped[name] = reason
            continue
        available = module.classes_available(resources) if hasattr(module, "classes_available") else module.CLASSES
        classes.extend(CorpusClass(sound, name) for sound in available)
    return classes, skipped


class Planner:
    """Draws clip plans for all splits from one seed, keeping renders disjoint across splits."""

    def __init__(self, options: CorpusOptions, classes: list[CorpusClass], resources: RenderResources):
        self.options, self.classes, self.resources = options, classes, resources
        self.modules = renderers()
        self.fingerprint_split: dict[str, str] = {}

    def plan_split(self, split: str, split_index: int) -> list[dict[str, Any]]:
        rng = np.random.default_rng([self.options.seed, split_index])
        size = SIZES[self.options.size]
        if split in SINGLE_SOURCE_SPLITS:
            per_class = getattr(size, f"{split}_per_class")
            labels = [index for index in range(len(self.classes)) for _ in range(per_class)]
            rng.shuffle(labels)
            class_sets = [[label] for label in labels]
        else:
            counts, weights = SOURCES_PER_CLIP[split]
            total = getattr(size, split)
            class_sets = [
                list(rng.choice(len(self.classes), size=int(rng.choice(counts, p=weights)), replace=False))
                for _ in range(total)
            ]
        return [self.plan_clip(f"{split}-{number:06d}", split, class_set, rng)
                for number, class_set in enumerate(class_sets)]

    def plan_clip(self, clip_id: str, split: str, class_set: list[int], rng: np.random.Generator) -> dict:
        seconds = self.options.clip_seconds
        sources = []
        for class_index in class_set:
            corpus_class = self.classes[int(class_index)]
            if len(class_set) == 1:
                onset = float(rng.uniform(0.0, 0.3))
                duration = seconds - onset
            else:
                duration = float(rng.uniform(max(1.5, 0.4 * seconds), seconds))
                onset = float(rng.uniform(0.0, seconds - duration))
            renderer, recipe = self._draw_recipe(corpus_class, round(duration, 3), split, rng)
            sources.append({
                "label": corpus_class.sound.name,
                "family": corpus_class.sound.family,
                "renderer": renderer,
                "phrase": str(rng.choice(corpus_class.sound.phrasings)),
                "onset": round(onset, 3),
                "offset": round(onset + recipe["duration"], 3),
                "level_db": round(float(rng.uniform(-6.0, 0.0)), 2) if len(class_set) > 1 else 0.0,
                "recipe": recipe,
                "acoustics": self.options.source_acoustics(rng),
            })
        caption, phrases = compose_caption(
            [CaptionSource(s["phrase"], s["onset"], s["offset"], s["level_db"]) for s in sources], rng
        )
        return {
            "id": clip_id, "split": split, "caption": caption, "phrases": phrases,
            "sources": sorted(sources, key=lambda s: s["onset"]),
            "acoustics": self.options.mixture_acoustics(rng), "peak": round(float(rng.uniform(0.3, 0.9)), 3),
            "seed": int(rng.integers(2**31)),
        }

    def _draw_recipe(self, corpus_class: CorpusClass, duration: float, split: str, rng: np.random.Generator):
        """``(renderer, recipe)``: a class another family voices is played from field recordings for a share of
        its renders when recordings of it are installed (no draw otherwise, so corpora without them keep their
        plans)."""
        name, renderer = corpus_class.sound.name, corpus_class.renderer
        recorded = self.modules["field_recordings"]
        if renderer != "field_recordings" and recorded.voices(name, self.resources):
            renderer = "field_recordings" if rng.random() < recorded.RECORDED_SHARE else renderer
        module = self.modules[renderer]
        for _ in range(100):
            if renderer == "general_midi":
                recipe = module.plan(name, rng, duration, soundfonts=module.voicings(name, self.resources))
            elif renderer == "field_recordings":
                recipe = module.plan(name, rng, duration, recordings=self.resources.recordings[name], split=split)
            else:
                recipe = module.plan(name, rng, duration)
            fingerprint = module.recipe_fingerprint(recipe)
            owner = self.fingerprint_split.setdefault(fingerprint, split)
            if owner == split:
                return renderer, recipe
        raise BisepError(f"could not draw a {corpus_class.sound.name} render unseen in other splits")


_WORKER_RESOURCES: RenderResources | None = None


def _init_worker(resources: RenderResources) -> None:
    global _WORKER_RESOURCES
    _WORKER_RESOURCES = resources


def render_clip(job: tuple[dict, int, str, bool]) -> dict[str, Any]:
    """Render one planned clip, write its mixture (and stems), return its levels for the statistics."""
    plan, sample_rate, folder, with_stems = job
    mixture, stems = mix_clip(plan, sample_rate, _WORKER_RESOURCES)
    root = Path(folder)
    save_audio(root / "audio" / plan["split"] / f"{plan['id']}.wav", mixture.astype(np.float32), sample_rate)
    if with_stems and len(plan["sources"]) > 1:
        for index, source in enumerate(plan["sources"]):
            save_audio(root / stem_path(plan, index, source), stems[index].astype(np.float32), sample_rate,
                       subtype="FLOAT")
    rms = float(np.sqrt(np.mean(mixture**2)))
    return {"id": plan["id"], "peak": float(np.abs(mixture).max()), "rms_db": 20 * np.log10(max(rms, 1e-12))}


def mix_clip(plan: dict, sample_rate: int, resources: RenderResources) -> tuple[np.ndarray, np.ndarray]:
    """Render a planned clip: ``(mixture (samples,), stems (sources, samples))`` float64 at the plan's peak.

    Each stem is its source as the microphone hears it (render, microphone, dynamics, room tail to the clip's
    end) at its level; the mixture is their sum after the whole recording's band limit, noise and codec
    (``bisep.data.acoustics``), so noise and codec error belong to no stem.
    """
    modules = renderers()
    length = round(plan["clip_seconds"] * sample_rate)
    stems = np.zeros((len(plan["sources"]), length), np.float64)
    for index, source in enumerate(plan["sources"]):
        audio = np.asarray(modules[source["renderer"]].render(source["recipe"], sample_rate, resources), np.float64)
        start = round(source["onset"] * sample_rate)
        span = min(length - start, audio.size)
        stems[index, start:start + span] = audio[:span]
        stems[index] = apply_source_acoustics(stems[index], source["acoustics"], sample_rate, plan["seed"] + index)
        active = stems[index][np.abs(stems[index]) > 1e-4 * max(np.abs(stems[index]).max(), 1e-12)]
        rms = np.sqrt(np.mean(active**2)) if active.size else 1.0
        stems[index] *= 10 ** ((REFERENCE_RMS_DB + source["level_db"]) / 20) / max(rms, 1e-12)
    mixture, stems = apply_mixture_acoustics(stems, plan["acoustics"], sample_rate, plan["seed"])
    scale = plan["peak"] / max(np.abs(mixture).max(), 1e-9)
    return mixture * scale, stems * scale


def stem_path(plan: dict, index: int, source: dict) -> str:
    return f"stems/{plan['split']}/{plan['id']}/{index}-{slug(source['label'])}.wav"


def plan_compositions(
    clips: list[dict], counts: dict[int, int], seed: int, split: str
) -> dict[int, list[list[str]]]:
    """Lists of ``k`` clip ids of ``k`` different classes each (the paper's test_sep_k lists)."""
    rng = np.random.default_rng([seed, 1000 + sum(map(ord, split))])
    by_label: dict[str, list[str]] = {}
    for clip in clips:
        by_label.setdefault(clip["sources"][0]["label"], []).append(clip["id"])
    labels = sorted(by_label)
    result = {}
    for k, count in counts.items():
        if len(labels) < k:
            continue
        result[k] = [
            [str(rng.choice(by_label[label])) for label in rng.choice(labels, size=k, replace=False)]
            for _ in range(count)
        ]
    return result


def build_corpus(
    out: str | Path,
    options: CorpusOptions,
    resources: RenderResources,
    jobs: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Plan, render and write the corpus into ``out``; returns the manifest."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise BisepError(f"{out}: exists and is not empty (pass --overwrite to replace it)")
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir()
    except OSError as error:
        raise BisepError(f"{out}: cannot write there ({error.strerror or error})") from None
    try:
        manifest = _build_into(partial, options, resources, jobs, progress)
        replace_folder(partial, out)
        return manifest
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)


def _build_into(folder: Path, options: CorpusOptions, resources: RenderResources, jobs: int, progress: bool):
    classes, skipped = available_classes(resources)
    for name, reason in skipped.items():
        print(f"bisep: warning: skipping the {name} sounds: {reason}", file=sys.stderr)
    if len(classes) < 4:
        raise SourceUnavailable("fewer than 4 sound classes can be rendered here; see the warnings above")
    planner = Planner(options, classes, resources)
    splits = ("grounding", "train", "train_sup", "valid", "test")
    plans = {split: planner.plan_split(split, index) for index, split in enumerate(splits)}
    for split_plans in plans.values():
        for plan in split_plans:
            plan["clip_seconds"] = options.clip_seconds
    jobs_list = [(plan, options.sample_rate, str(folder), options.with_stems)
                 for split in splits for plan in plans[split]]
    levels = _render_all(jobs_list, resources, jobs, progress)

    size = SIZES[options.size]
    compositions = {}
    for split in ("valid", "test"):
        counts = getattr(size, f"{split}_compositions")
        for k, rows in plan_compositions(plans[split], counts, options.seed, split).items():
            compositions[f"{split}_{k}"] = rows
    records = {plan["id"]: _annotation(plan, options) for split in splits for plan in plans[split]}
    manifest = {
        "generator": "bisep corpus build",
        "bisep_version": __version__,
        "annotations_format": ANNOTATIONS_FORMAT,
        "options": asdict(options),
        "classes": [
            {"name": c.sound.name, "family": c.sound.family, "renderer": c.renderer,
             "phrasings": list(c.sound.phrasings), "held_out_phrasings": list(c.sound.held_out_phrasings)}
            for c in classes
        ],
        "soundfonts": {name: sha256_file(path) for name, path in sorted(resources.soundfonts.items())},
        "sample_banks": {name: {"package": bank.package, "version": bank.version, "licence": bank.licence}
                         for name, bank in sorted(resources.sample_banks.items())},
        "field_recordings": field_recordings.provenance(resources.recordings),
        "skipped_families": skipped,
        "stats": _statistics(plans, levels),
    }
    write_dataset(folder, records, {split: [p["id"] for p in plans[split]] for split in splits}, compositions,
                  manifest, options.sample_rate)
    return manifest


def _render_all(jobs_list: list, resources: RenderResources, jobs: int, progress: bool) -> dict[str, dict]:
    from tqdm import tqdm

    bar = tqdm(total=len(jobs_list), desc="rendering clips", unit="clip", disable=not progress, file=sys.stderr)
    levels = {}
    if jobs <= 1:
        _init_worker(resources)
        results = map(render_clip, jobs_list)
        for result in results:
            levels[result["id"]] = result
            bar.update()
    else:
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        with context.Pool(jobs, initializer=_init_worker, initargs=(resources,)) as pool:
            for result in pool.imap_unordered(render_clip, jobs_list, chunksize=4):
                levels[result["id"]] = result
                bar.update()
    bar.close()
    return levels


def _annotation(plan: dict, options: CorpusOptions) -> dict[str, Any]:
    sources = []
    for index, source in enumerate(plan["sources"]):
        entry = {key: source[key] for key in ("label", "family", "phrase", "onset", "offset", "level_db")}
        entry["soundfont"] = source["recipe"].get("soundfont")
        entry["render"] = _module_fingerprint(source)
        if options.with_stems and len(plan["sources"]) > 1:
            entry["stem"] = stem_path(plan, index, source)
        sources.append(entry)
    return {
        "id": plan["id"],
        "audio": f"audio/{plan['split']}/{plan['id']}.wav",
        "caption": plan["caption"],
        "phrases": plan["phrases"],
        "labels": [source["label"] for source in plan["sources"]],
        "duration": options.clip_seconds,
        "sources": sources,
        "acoustics": {"sources": [source["acoustics"] for source in plan["sources"]],
                      "mixture": plan["acoustics"]},
    }


def _module_fingerprint(source: dict) -> str:
    return renderers()[source["renderer"]].recipe_fingerprint(source["recipe"])


def _statistics(plans: dict[str, list[dict]], levels: dict[str, dict]) -> dict[str, Any]:
    stats = {}
    for split, split_plans in plans.items():
        peaks = [levels[p["id"]]["peak"] for p in split_plans]
        rms = [levels[p["id"]]["rms_db"] for p in split_plans]
        stats[split] = {
            "clips": len(split_plans),
            "sources_per_clip": dict(sorted(Counter(len(p["sources"]) for p in split_plans).items())),
            "clips_per_class": dict(sorted(Counter(s["label"] for p in split_plans for s in p["sources"]).items())),
            "peak_range": [round(min(peaks), 4), round(max(peaks), 4)],
            "rms_db_range": [round(min(rms), 2), round(max(rms), 2)],
        }
    return stats
