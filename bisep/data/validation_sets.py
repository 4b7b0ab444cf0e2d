"""Validation sets for choosing recipes and checkpoints (never for training), each rebuilt by one command.

``realval`` (``bisep data realval``): single-source clips of real recordings from freely licensed Debian
packages, prompted in everyday words: a woman's voice (``alsa-utils``), acoustic drum kits sampled hit by hit
(``avldrums.lv2-soundfont``), sampled instruments playing melodies (``freepats``, GUS patches) and environmental
recordings (``openttd-opensfx``). ``sfval`` (``bisep data soundfont-val``): the built-in corpus's General MIDI
classes voiced by a soundfont training never uses, prompted with bisep's validation paraphrases
(``bisep/grounding/validation_phrasings.json``).

Both are bisep datasets (``docs/data-format.md``): a ``valid`` split of single-source clips and composition
lists ``valid_2`` and ``valid_3`` of clips of different classes, which ``bisep evaluate`` mixes as their mean.
Every random choice comes from the seed, so a rebuild gives identical files.

Sources kept out on purpose. Reserved for independent evaluation, never read here: the Debian packages
``asterisk-core-sounds-en*``, ``sonic-pi-samples``, ``sound-theme-freedesktop`` and
``musescore-general-soundfont*``. Used (or meant) for training, so they would not measure transfer: npm
``tonejs-instrument-*``, Debian ``hydrogen-drumkits``, ``fluid-soundfont-gm``, pretty_midi's TimGM6mb and eSpeak NG.
The AVL "Black Pearl" kit played here is the same set of recordings as ``hydrogen-drumkits``' "The Black Pearl":
the training corpus must keep excluding that kit, or this set stops measuring anything unseen.
"""

from __future__ import annotations

import fnmatch
import io
import json
import os
import re
import shutil
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import soundfile
import soxr

from bisep.version import __version__
from bisep.audio import fade_edges, save_audio
from bisep.data.debian import package_owner, package_version
from bisep.data.format import ANNOTATIONS_FORMAT, write_dataset
from bisep.data.gus_patch import play_note, read_patch
from bisep.data.reserved import refuse_reserved
from bisep.data.sources import field_recordings
from bisep.errors import BisepError, SourceUnavailable
from bisep.files import replace_folder, sha256_file

SAMPLE_RATE = 16000  # Hz
CLIP_SECONDS = 4.0
PEAK = 0.9
EDGE_FADE_SECONDS = 0.01  # raised-cosine fade where a recording is cut, so the cut does not click
COMPOSITIONS = {2: 150, 3: 100}  # composition lists valid_k and their lengths

TRAINING_PACKAGES = ("hydrogen-drumkits", "hydrogen-drumkits-effects", "fluid-soundfont-gm", "timgm6mb-soundfont",
                     "espeak-ng-data", "espeak-ng", "node-tonejs-instrument-*", *field_recordings.PACKAGES)
TRAINING_PATHS = ("*/hydrogen/data/drumkits/*", "*fluidr3_gm*", "*timgm6mb*", "*espeak-ng-data*",
                  "*tonejs-instrument-*")


class TrainingSourceError(BisepError):
    """A file the training corpus uses: validating on it would not measure anything unseen."""


def refuse_unusable(path: str | Path) -> Path:
    """``path``, or an error if it is reserved for independent evaluation (:mod:`bisep.data.reserved`) or belongs
    to a training source (by its Debian package where dpkg knows it, else by its path)."""
    path = refuse_reserved(path)
    resolved = path.expanduser().resolve()
    names = (str(path).lower(), str(resolved).lower())
    owner = package_owner(str(resolved)) if resolved.exists() else None
    if owner and any(fnmatch.fnmatch(owner, pattern) for pattern in TRAINING_PACKAGES):
        raise TrainingSourceError(f"{path}: belongs to the Debian package {owner}, which the training corpus uses; "
                                  "a validation set must not read it")
    if any(fnmatch.fnmatch(name, pattern) for name in names for pattern in TRAINING_PATHS):
        raise TrainingSourceError(f"{path}: a source the training corpus uses; a validation set must not read it")
    return path


# Debian packages: presence, version, licence ----------------------------------------------------------------------


@dataclass(frozen=True)
class DebianSource:
    """A Debian package a validation set reads: the file or folder that must exist, and the copyright
    stanza (DEP-5 ``Files:`` pattern) whose licence covers the sounds, or a summary for non-DEP-5 files."""

    package: str
    path: Path
    licence_files: str = "*"
    licence_summary: str | None = None

    def require(self, purpose: str) -> None:
        if not self.path.exists():
            raise SourceUnavailable(f"{purpose} needs the Debian package {self.package} ({self.path} not found); "
                                    f"install it with: apt-get install {self.package}")

    def provenance(self) -> dict[str, str]:
        return {"package": self.package, "version": package_version(self.package),
                "licence": debian_licence(self.package, self.licence_files, self.licence_summary),
                "path": str(self.path)}


def debian_licence(package: str, files: str = "*", summary: str | None = None) -> str:
    """The ``License:`` of the stanza ``Files: <files>`` in ``/usr/share/doc/PACKAGE/copyright`` (DEP-5), else
    ``summary``, which is given only for packages whose copyright file is free text."""
    path = Path("/usr/share/doc") / package / "copyright"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown (no copyright file)"
    for stanza in re.split(r"\n\s*\n", text):
        listed = re.search(r"^Files:(.*(?:\n[ \t]+\S.*)*)", stanza, re.MULTILINE)
        licence = re.search(r"^License:\s*(.+)$", stanza, re.MULTILINE)
        if listed and licence and files in listed.group(1).split():
            return licence.group(1).strip()
    return summary or f"see {path}"


ALSA = DebianSource("alsa-utils", Path("/usr/share/sounds/alsa"))
AVL_DRUMS = DebianSource("avldrums.lv2-soundfont", Path("/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2"),
                         licence_files="sf2/*")
FREEPATS = DebianSource("freepats", Path("/usr/share/midi/freepats"),
                        licence_summary="GPL-2+ with an exception for compositions that use the patches")
CSOUND_SOUNDFONT = DebianSource("csound-soundfont", Path("/usr/share/sounds/sf2/sf_GMbank.sf2"))  # full GM bank
OPENSFX = DebianSource("openttd-opensfx", Path("/usr/share/games/openttd/baseset/opensfx/opensfx.cat"),
                       licence_files="src/wav/*")


# Real-recording sources ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RealClass:
    """A class of the real-recording set: everyday prompts and how to draw one clip ``(samples,)`` float64."""

    name: str
    source: DebianSource
    prompts: tuple[str, ...]
    draw: Callable[[np.random.Generator], tuple[np.ndarray, dict]]


def _speech(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Two or three of the channel-name recordings one after another, with pauses (Noise.wav is not speech)."""
    files = sorted(p for p in ALSA.path.glob("*.wav") if re.match(r"(Front|Rear|Side)_", p.name))
    chosen = [files[i] for i in rng.choice(len(files), size=int(rng.integers(2, 4)), replace=False)]
    clip = np.zeros(_length())
    position = int(rng.uniform(0.0, 0.3) * SAMPLE_RATE)
    for path in chosen:
        voice = _read_mono(path)[:clip.size - position]
        clip[position:position + voice.size] = voice
        position += voice.size + int(rng.uniform(0.15, 0.5) * SAMPLE_RATE)
        if position >= clip.size:
            break
    return clip, {"files": [p.name for p in chosen]}


def _drums(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A groove from the corpus's drum planner played on one of the two AVL kits (GM drum keys)."""
    from bisep.data.sources import general_midi

    kit = str(_pick(rng, ("Black_Pearl_4_LV2", "Red_Zeppelin_4_LV2")))
    notes = general_midi.plan("drum kit", rng, CLIP_SECONDS)["notes"]
    return _play_soundfont(AVL_DRUMS.path.with_name(f"{kit}.sf2"), notes), {"kit": kit, "hits": len(notes)}


_SYNTH_RATE = 44100  # Hz; tinysoundfont interpolates without a low-pass, so render high and resample


def _play_soundfont(path: Path, notes: list) -> np.ndarray:
    """``notes`` ([onset s, length s, key, velocity]) on channel 10 of preset 0 of ``path``: mono at 16 kHz."""
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=_SYNTH_RATE)
    soundfont = synth.sfload(str(path))
    synth.program_select(9, soundfont, 0, 0, False)
    events = sorted([(round(on * _SYNTH_RATE), 1, key, velocity) for on, _, key, velocity in notes]
                    + [(round((on + length) * _SYNTH_RATE), 0, key, 0) for on, length, key, _ in notes])
    length = round(CLIP_SECONDS * _SYNTH_RATE)
    frames = np.zeros((length, 2), np.float32)
    position = 0
    for sample, is_on, key, velocity in events:
        sample = min(sample, length)
        if sample > position:
            synth.generate_simple(sample - position, buffer=frames[position:sample])
            position = sample
        if is_on:
            synth.noteon(9, key, velocity)
        else:
            synth.noteoff(9, key)
    if position < length:
        synth.generate_simple(length - position, buffer=frames[position:])
    return soxr.resample(frames.mean(axis=1).astype(np.float64), _SYNTH_RATE, SAMPLE_RATE)


FREEPATS_PATCHES = {  # class -> (patch files, corpus class whose melody planner plays it); all sampled
    "piano": (("000_Acoustic_Grand_Piano.pat",), "piano"),
    "acoustic guitar": (("024_Nylon_Guitar.pat", "025_Steel_Guitar.pat"), "acoustic guitar"),
    "violin": (("040_Violin.pat",), "violin"),
    "flute": (("073_Flute.pat",), "flute"),
    "trumpet": (("056_Trumpet.pat",), "trumpet"),
    "xylophone": (("013_Xylophone.pat",), "xylophone"),
    "bells": (("014_Tubular_Bells.pat",), None),
}


def _instrument(name: str) -> Callable[[np.random.Generator], tuple[np.ndarray, dict]]:
    def draw(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        from bisep.data.sources import general_midi

        files, planner_class = FREEPATS_PATCHES[name]
        patch_file = str(_pick(rng, files))
        notes = (general_midi.plan(planner_class, rng, CLIP_SECONDS)["notes"] if planner_class
                 else _bell_strikes(rng))
        patch = read_patch(FREEPATS.path / "Tone_000" / patch_file)
        clip = np.zeros(_length())
        for onset, length, key, velocity in notes:
            start = round(onset * SAMPLE_RATE)
            note = play_note(patch, key, length, SAMPLE_RATE)[:clip.size - start]
            clip[start:start + note.size] += note * (velocity / 127.0) ** 2
        return clip, {"patch": patch_file, "notes": len(notes)}

    return draw


def _bell_strikes(rng: np.random.Generator) -> list[list]:
    """Three to eight strikes of a major-pentatonic bell tune, each left to ring until the clip ends."""
    keys = [60 + step for step in (0, 2, 4, 7, 9, 12, 14, 16)]
    time, notes = float(rng.uniform(0.0, 0.2)), []
    for _ in range(int(rng.integers(3, 9))):
        if time > CLIP_SECONDS - 0.3:
            break
        notes.append([time, CLIP_SECONDS - time, int(_pick(rng, keys)), int(rng.integers(70, 120))])
        time += float(rng.uniform(0.3, 0.9))
    return notes


OPENSFX_SOUNDS = {  # class -> entries of opensfx.cat (0-based; their names are in the manifest)
    "birds": (66, 72), "helicopter": (24,), "applause": (29,), "wind": (52,), "jackhammer": (33,),
    "chainsaw": (56,), "circular saw": (40,), "jet plane": (9, 59, 61), "ship horn": (6, 7), "cow": (37,),
    "horse": (38,),
}


def read_opensfx(path: Path) -> list[tuple[str, bytes]]:
    """The ``(name, WAV bytes)`` entries of an OpenTTD sound catalogue: a table of (offset, size) uint32 pairs
    (offsets carry a flag in their top bit), each entry a length-prefixed name followed by a RIFF WAV file."""
    raw = path.read_bytes()
    count = (struct.unpack_from("<I", raw, 0)[0] & 0x7FFFFFFF) // 8
    entries = []
    for index in range(count):
        offset, size = struct.unpack_from("<II", raw, 8 * index)
        offset &= 0x7FFFFFFF
        name_length = raw[offset]
        name = raw[offset + 1:offset + 1 + name_length].split(b"\0")[0].decode("latin-1")
        entries.append((name, raw[offset + 1 + name_length:offset + size]))
    return entries


def _environment(name: str) -> Callable[[np.random.Generator], tuple[np.ndarray, dict]]:
    def draw(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        entry = int(_pick(rng, OPENSFX_SOUNDS[name]))
        title, wav = _opensfx_entries()[entry]
        recording = _read_mono(io.BytesIO(wav))
        clip = np.zeros(_length())
        if recording.size <= clip.size:
            start = int(rng.integers(0, clip.size - recording.size + 1))
            clip[start:start + recording.size] = recording
            return clip, {"entry": entry, "title": title, "from_second": 0.0}
        start = _loud_window(recording, clip.size, rng)
        piece = fade_edges(recording[start:start + clip.size], round(EDGE_FADE_SECONDS * SAMPLE_RATE))
        return piece, {"entry": entry, "title": title, "from_second": round(start / SAMPLE_RATE, 3)}

    return draw


_OPENSFX_CACHE: list[tuple[str, bytes]] = []


def _opensfx_entries() -> list[tuple[str, bytes]]:
    if not _OPENSFX_CACHE:
        _OPENSFX_CACHE.extend(read_opensfx(OPENSFX.path))
    return _OPENSFX_CACHE


def _loud_window(recording: np.ndarray, length: int, rng: np.random.Generator) -> int:
    """A random start among the windows (0.25 s steps) at least a third as loud (RMS) as the loudest one."""
    step = SAMPLE_RATE // 4
    starts = np.arange(0, recording.size - length + 1, step)
    rms = np.array([np.sqrt(np.mean(recording[s:s + length] ** 2)) for s in starts])
    return int(_pick(rng, starts[rms >= rms.max() / 3]))


REAL_CLASSES = (
    RealClass("speech", ALSA, ("a woman speaking", "someone talking", "speech", "a voice"), _speech),
    RealClass("drums", AVL_DRUMS, ("drums", "a drum kit", "someone playing the drums"), _drums),
    RealClass("piano", FREEPATS, ("a piano", "piano", "someone playing the piano"), _instrument("piano")),
    RealClass("acoustic guitar", FREEPATS, ("guitar", "an acoustic guitar", "someone playing the guitar"),
              _instrument("acoustic guitar")),
    RealClass("violin", FREEPATS, ("a violin", "violin", "someone playing the violin"), _instrument("violin")),
    RealClass("flute", FREEPATS, ("a flute", "flute", "someone playing the flute"), _instrument("flute")),
    RealClass("trumpet", FREEPATS, ("a trumpet", "trumpet", "someone playing the trumpet"), _instrument("trumpet")),
    RealClass("xylophone", FREEPATS, ("a xylophone", "xylophone", "someone playing the xylophone"),
              _instrument("xylophone")),
    RealClass("bells", FREEPATS, ("bells ringing", "bells", "chimes"), _instrument("bells")),
    RealClass("birds", OPENSFX, ("birds", "a bird calling", "birds singing"), _environment("birds")),
    RealClass("helicopter", OPENSFX, ("a helicopter", "helicopter", "a helicopter flying"),
              _environment("helicopter")),
    RealClass("applause", OPENSFX, ("applause", "people clapping", "a crowd clapping"), _environment("applause")),
    RealClass("wind", OPENSFX, ("wind", "the wind blowing", "wind noise"), _environment("wind")),
    RealClass("jackhammer", OPENSFX, ("a jackhammer", "a pneumatic drill", "road works drilling"),
              _environment("jackhammer")),
    RealClass("chainsaw", OPENSFX, ("a chainsaw", "chainsaw", "someone cutting wood with a chainsaw"),
              _environment("chainsaw")),
    RealClass("jet plane", OPENSFX, ("a jet plane", "an airplane taking off", "a plane"),
              _environment("jet plane")),
    RealClass("ship horn", OPENSFX, ("a ship's horn", "a foghorn", "a boat horn"), _environment("ship horn")),
    RealClass("circular saw", OPENSFX, ("a circular saw", "a saw cutting wood", "a power saw"),
              _environment("circular saw")),
    RealClass("cow", OPENSFX, ("a cow mooing", "a cow", "cattle"), _environment("cow")),
    RealClass("horse", OPENSFX, ("a horse neighing", "a horse", "a neighing horse"), _environment("horse")),
)


def _read_mono(source) -> np.ndarray:
    """A recording (path or file object) as float64 mono at 16 kHz."""
    audio, rate = soundfile.read(source, dtype="float64", always_2d=True)
    audio = audio.mean(axis=1)
    return soxr.resample(audio, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else audio


def _length() -> int:
    return round(CLIP_SECONDS * SAMPLE_RATE)


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


# Building ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationOptions:
    seed: int = 0
    per_class: int = 8  # clips per class
    items: int | None = None  # compositions per list (None: 150 in valid_2, 100 in valid_3)
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.per_class < 1:
            raise BisepError(f"clips per class must be 1 or more, got {self.per_class}")
        if self.items is not None and self.items < 1:
            raise BisepError(f"compositions per list must be 1 or more, got {self.items}")

    def composition_counts(self) -> dict[int, int]:
        return {k: self.items or count for k, count in COMPOSITIONS.items()}


def build_real_validation(out: str | Path, options: ValidationOptions = ValidationOptions()) -> dict[str, Any]:
    """Write the real-recording validation set into ``out``; returns its manifest."""
    sources = {real.source.package: real.source for real in REAL_CLASSES}
    for source in sources.values():
        source.require("the real-recording validation set")
        refuse_unusable(source.path)
    draws = []
    for class_index, real in enumerate(REAL_CLASSES):
        for number in range(options.per_class):
            rng = np.random.default_rng([options.seed, class_index, number])
            draws.append((real.name, str(_pick(rng, real.prompts)), lambda rng=rng, real=real: real.draw(rng)))
    manifest = {
        "generator": "bisep data realval",
        "purpose": "choosing recipes and checkpoints on real recordings; never for training",
        "sources": [source.provenance() for source in sources.values()],
        "classes": [{"name": real.name, "package": real.source.package, "prompts": list(real.prompts)}
                    for real in REAL_CLASSES],
        "opensfx_entries": {str(entry): _opensfx_entries()[entry][0]
                            for entries in OPENSFX_SOUNDS.values() for entry in entries},
    }
    return _build(out, draws, manifest, options)


def build_soundfont_validation(out: str | Path, soundfont: str | Path = CSOUND_SOUNDFONT.path,
                               options: ValidationOptions = ValidationOptions()) -> dict[str, Any]:
    """Write the held-out soundfont validation set into ``out``: every General MIDI class of the corpus played
    by ``soundfont`` (which training must not use), prompted with bisep's validation paraphrases."""
    from bisep.data.sources import RenderResources, general_midi
    from bisep.evaluate.grounding import VALIDATION_PHRASINGS

    soundfont = refuse_unusable(Path(soundfont))
    if soundfont == CSOUND_SOUNDFONT.path:
        CSOUND_SOUNDFONT.require("the held-out soundfont validation set")
    if soundfont.is_file():
        for name, training in general_midi.default_soundfonts().items():
            if sha256_file(training) == sha256_file(soundfont):
                raise TrainingSourceError(f"{soundfont}: the same file as the training soundfont {name}; "
                                          "a validation set must use a soundfont training never hears")
    fonts = general_midi.load_soundfonts([soundfont])
    resources = RenderResources(fonts)
    (font_name,) = fonts
    phrasings = json.loads(VALIDATION_PHRASINGS.read_text(encoding="utf-8"))["classes"]
    draws = []
    for class_index, sound in enumerate(general_midi.CLASSES):
        for number in range(options.per_class):
            rng = np.random.default_rng([options.seed, class_index, number])
            recipe = general_midi.plan(sound.name, rng, CLIP_SECONDS, soundfonts=[font_name])
            render = (lambda recipe=recipe: (general_midi.render(recipe, SAMPLE_RATE, resources),
                                             {"program": recipe["program"], "bank": recipe["bank"],
                                              "style": recipe["style"]}))
            draws.append((sound.name, str(_pick(rng, phrasings[sound.name])), render))
    package = package_owner(str(soundfont.resolve())) if soundfont.exists() else None
    manifest = {
        "generator": "bisep data soundfont-val",
        "purpose": "choosing recipes and checkpoints on an unheard soundfont with unseen phrasings; never for "
                   "training",
        "soundfont": {"path": str(soundfont), "sha256": sha256_file(soundfont),
                      **(DebianSource(package, soundfont).provenance() if package else {})},
        "phrasings": "bisep/grounding/validation_phrasings.json",
        "classes": [{"name": sound.name, "prompts": phrasings[sound.name]} for sound in general_midi.CLASSES],
    }
    return _build(out, draws, manifest, options)


def _build(out: str | Path, draws: list, manifest: dict, options: ValidationOptions) -> dict[str, Any]:
    """Render every clip into a hidden sibling of ``out``, write the dataset files, then rename it into place."""
    from tqdm import tqdm

    from bisep.data.corpus import plan_compositions

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not options.overwrite:
        raise BisepError(f"{out}: exists and is not empty (pass --overwrite to replace it)")
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    except OSError as error:
        raise BisepError(f"{out}: cannot write there ({error.strerror or error})") from None
    try:
        clips = {}
        for number, (label, prompt, draw) in enumerate(tqdm(draws, desc="rendering clips", unit="clip",
                                                             disable=not options.progress, file=sys.stderr)):
            audio, details = draw()
            peak = float(np.abs(audio).max())
            if peak < 1e-4:
                raise SourceUnavailable(f"a {label} clip rendered silent ({details}); the source files may be "
                                        "damaged")
            clip_id = f"valid-{number:06d}"
            save_audio(staging / "audio" / "valid" / f"{clip_id}.wav", (audio * (PEAK / peak)).astype(np.float32),
                       SAMPLE_RATE)
            clips[clip_id] = {"id": clip_id, "audio": f"audio/valid/{clip_id}.wav", "caption": prompt,
                              "phrases": [prompt], "labels": [label], "duration": CLIP_SECONDS,
                              "sources": [{"label": label, "phrase": prompt, **details}]}
        counts = options.composition_counts()
        compositions = {f"valid_{k}": rows for k, rows in
                        plan_compositions(list(clips.values()), counts, options.seed, "valid").items()}
        manifest = {**manifest, "bisep_version": __version__, "annotations_format": ANNOTATIONS_FORMAT,
                    "seed": options.seed, "sample_rate": SAMPLE_RATE, "clip_seconds": CLIP_SECONDS,
                    "clips_per_class": options.per_class,
                    "compositions": {name: len(rows) for name, rows in compositions.items()}}
        write_dataset(staging, clips, {"valid": list(clips)}, compositions, manifest, SAMPLE_RATE)
        replace_folder(staging, out)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)
