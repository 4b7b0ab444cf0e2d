"""Rendering the example mixtures shipped with bisep (read back by :func:`bisep.examples.list_examples`).

``render_examples`` plans and renders a few mixtures of the built-in corpus's sound world (speech, General MIDI
instruments and effects, procedural sounds) from one seed.

Every source's reference is exactly its share of the mixture: the references are quantised to 16-bit first and
the mixture is their integer sum, so ``mixture == sum(references)`` sample for sample. Files are FLAC (lossless
16-bit PCM, half the size of WAV: six examples with their references stay under 2 MB). General MIDI sounds are
rendered with pretty_midi's TimGM6mb soundfont only, which every install has, so the files do not depend on which
Debian soundfonts a machine holds. Regenerate with ``python scripts/make_examples.py``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from bisep.version import __version__
from bisep.data.corpus import CorpusOptions, Planner, available_classes, mix_clip
from bisep.data.sources import RenderResources
from bisep.errors import BisepError, SourceUnavailable
from bisep.examples import INDEX_NAME
from bisep.files import atomic_path, replace_folder, slug, write_json_atomic

GENERATOR_VERSION = 1
FULL_SCALE = 32767


@dataclass(frozen=True)
class ExampleSpec:
    """One example to render: its folder name and the corpus sound classes mixed in it."""

    name: str
    classes: tuple[str, ...]


SHIPPED_SPECS = (
    ExampleSpec("speech-and-birds", ("female speech", "birds chirping")),
    ExampleSpec("violin-and-drums", ("violin", "drum kit")),
    ExampleSpec("piano-and-rain", ("piano", "rain")),
    ExampleSpec("speech-and-clock", ("male speech", "clock ticking")),
    ExampleSpec("guitar-fire-and-wind", ("acoustic guitar", "crackling fire", "wind")),
    ExampleSpec("trumpet-siren-and-engine", ("trumpet", "siren", "engine hum")),
)


def render_examples(
    out: str | Path,
    seed: int = 0,
    specs: tuple[ExampleSpec, ...] = SHIPPED_SPECS,
    seconds: float = 4.0,
    sample_rate: int = 16000,
) -> dict:
    """Render ``specs`` into ``out`` (replaced as a whole, atomically); returns the index written to it."""
    from bisep.data.sources.general_midi import default_soundfonts

    if len({spec.name for spec in specs}) != len(specs) or any(slug(spec.name) != spec.name for spec in specs):
        raise BisepError("example names must be distinct lowercase slugs")
    soundfonts = {name: path for name, path in default_soundfonts().items() if name == "TimGM6mb"}
    resources = RenderResources(soundfonts)
    classes, skipped = available_classes(resources)
    by_name = {corpus_class.sound.name: index for index, corpus_class in enumerate(classes)}
    options = CorpusOptions(size="tiny", seed=seed, sample_rate=sample_rate, clip_seconds=seconds,
                            noise_probability=0.0)
    planner = Planner(options, classes, resources)
    out = Path(out)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        entries = []
        for number, spec in enumerate(specs):
            missing = [name for name in spec.classes if name not in by_name]
            if missing:
                reasons = "; ".join(skipped.values()) or "no such class in the corpus"
                raise SourceUnavailable(f"example {spec.name}: cannot render {', '.join(missing)} ({reasons})")
            rng = np.random.default_rng([seed, number])
            plan = planner.plan_clip(spec.name, "examples", [by_name[name] for name in spec.classes], rng)
            plan["clip_seconds"] = seconds
            entries.append(_write_example(partial, spec.name, plan, sample_rate, resources))
        index = {"generator": "bisep.data.examples.render_examples", "generator_version": GENERATOR_VERSION,
                 "bisep_version": __version__, "seed": seed, "sample_rate": sample_rate, "seconds": seconds,
                 "soundfont": "TimGM6mb", "examples": entries}
        write_json_atomic(partial / INDEX_NAME, index)
        replace_folder(partial, out)
        return index
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _write_example(root: Path, name: str, plan: dict, sample_rate: int, resources: RenderResources) -> dict:
    _, stems = mix_clip(plan, sample_rate, resources)
    if np.abs(stems).max() > 1.0:
        raise BisepError(f"example {name}: a source exceeds full scale; choose another seed")
    references = np.round(stems * FULL_SCALE).astype(np.int32)
    mixture = references.sum(axis=0)
    if np.abs(mixture).max() > FULL_SCALE:
        raise BisepError(f"example {name}: the mixture exceeds full scale; choose another seed")
    by_phrase = {source["phrase"]: index for index, source in enumerate(plan["sources"])}
    entry = {"name": name, "caption": plan["caption"], "prompts": plan["phrases"],
             "labels": [plan["sources"][by_phrase[phrase]]["label"] for phrase in plan["phrases"]],
             "mixture": f"{name}/mixture.flac", "references": {}}
    _write_pcm16(root / entry["mixture"], mixture, sample_rate)
    for phrase in plan["phrases"]:
        relative = f"{name}/references/{slug(phrase)}.flac"
        _write_pcm16(root / relative, references[by_phrase[phrase]], sample_rate)
        entry["references"][phrase] = relative
    return entry


def _write_pcm16(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    with atomic_path(path) as temporary:
        soundfile.write(temporary, samples.astype(np.int16), sample_rate, subtype="PCM_16", format="FLAC")
