"""Sound sources of the built-in corpus, one module per family.

Every family module exposes the same contract so the corpus generator can treat them alike:

- ``CLASSES``: a tuple of :class:`SoundClass`.
- ``plan(class_name, rng, duration) -> dict``: draws everything random about one render (melody, sentence,
  voice, procedural parameters) into a JSON-serialisable recipe. All randomness lives here, so planning can run
  sequentially from one seed while rendering runs in parallel workers and stays deterministic.
- ``render(recipe, sample_rate, resources) -> np.ndarray``: a pure function of the recipe; float32 mono of
  exactly ``round(recipe["duration"] * sample_rate)`` samples, peak <= 1, not silent.
- ``unavailable_reason(resources) -> str | None``: why this family cannot render here, or None.
- optionally ``classes_available(resources)``: the part of ``CLASSES`` that renders here, when that depends on
  what is installed (``field_recordings``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType


@dataclass(frozen=True)
class SoundClass:
    """One kind of sound with the words people use for it.

    ``phrasings`` appear in corpus captions (at least 4, clause-like so they compose into captions:
    "a violin plays", "someone playing the violin", "violin music"); ``held_out_phrasings`` never appear in
    any corpus caption and serve to test paraphrase generalisation ("someone fiddling on a violin").
    """

    name: str
    family: str
    phrasings: tuple[str, ...]
    held_out_phrasings: tuple[str, ...]


@dataclass(frozen=True)
class RenderResources:
    """What rendering may need from the machine: soundfont files by name (file stem) for General MIDI, and the
    banks of recorded instruments (``sample_banks.SampleBank`` by name) that voice the same performances, and the
    field recordings by class (``field_recordings.Recording`` tuples) that voice their own classes and part of the
    renders of other families' classes of the same name."""

    soundfonts: dict[str, Path] = field(default_factory=dict)
    sample_banks: dict = field(default_factory=dict)
    recordings: dict = field(default_factory=dict)


RENDERER_MODULES = ("general_midi", "speech", "procedural", "field_recordings")


def renderers() -> dict[str, ModuleType]:
    """The family modules by name, imported on first use (each may need optional native libraries)."""
    return {name: importlib.import_module(f"bisep.data.sources.{name}") for name in RENDERER_MODULES}
