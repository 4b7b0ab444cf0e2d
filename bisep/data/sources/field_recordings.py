"""Real recordings of animals, vehicles, weather and foley from freely licensed Debian packages.

The procedural and soundfont families give every class a synthetic voice; real recordings teach the separator
what a cow, a jet engine or breaking glass sound like outside a synthesiser. They come from game and education
data packages that ``scripts/setup.sh`` installs (``PACKAGES``: name, licence, where the sounds sit), chosen by
file name in ``docs/sound-sources-survey.md`` and never from the packages the validation sets or the reserved
evaluation use (``refuse_reserved`` and ``VALIDATION_PACKAGES`` guard that).

A render is a pure function of its recipe: one stretch of a long recording, or a sequence of one-shots (moos,
steps, shatters) with gaps, each played at a slightly different speed (pitch and tempo) and gain. Recordings of
a class are divided once, by a hash of their name, between the training splits and the held-out splits
(``valid``/``test``), so in-domain test scores are on recordings training never heard. Classes that other
families also voice (``helicopter``, ``rain``, ...) get a recorded voicing here for part of their renders.
"""

from __future__ import annotations

import functools
import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from bisep.audio import fade_edges
from bisep.data.debian import package_version
from bisep.data.reserved import refuse_reserved
from bisep.data.sources import RenderResources, SoundClass
from bisep.data.sources.procedural import recipe_fingerprint  # noqa: F401 (the family contract; same hash)
from bisep.errors import SourceUnavailable

FAMILY = "field_recordings"
PEAK = 0.9
FADE_SECONDS = 0.01
SPEED_RANGE = (0.94, 1.06)  # playback speed of each shot: pitch and tempo within about a semitone
ENVELOPE_RATE = 100  # frames a second of the loudness envelope plans read
QUIET_DB = -45.0  # trimmed off the ends of a recording, relative to its peak
HELD_OUT_SHARE = 0.25  # share of each class's recordings kept for the valid and test splits
HELD_OUT_SPLITS = ("valid", "test")
RECORDED_SHARE = 0.5  # share of the renders of another family's class that use its recordings instead
# packages the validation sets read (bisep.data.validation_sets): never a training source
VALIDATION_PACKAGES = ("openttd-opensfx", "freepats", "alsa-utils", "avldrums.lv2-soundfont", "csound-soundfont")


@dataclass(frozen=True)
class RecordingPackage:
    """A Debian package of recordings: where its sounds are (a folder, or a zip archive inside it)."""

    name: str
    root: Path
    licence: str
    archive: str | None = None


PACKAGES = {
    package.name: package for package in (
        RecordingPackage("tuxpaint-stamps-default", Path("/usr/share/tuxpaint/stamps"), "GPL-2"),
        RecordingPackage("searchandrescue-data", Path("/usr/share/games/searchandrescue/sounds"), "GPL-2"),
        RecordingPackage("ufoai-sound", Path("/usr/share/games/ufoai/base"),
                         "per file GPL-2+, CC-BY-3.0, CC-BY-SA-3.0 or public domain (its copyright file)", "0snd.pk3"),
        RecordingPackage("wesnoth-1.16-data", Path("/usr/share/games/wesnoth/1.16/data/core/sounds"), "GPL-2+"),
        RecordingPackage("megaglest-data", Path("/usr/share/games/megaglest"), "CC-BY-SA-3.0"),
    )
}


@dataclass(frozen=True)
class Style:
    """How a class's shots follow each other: the silence between two shots, in seconds."""

    gap: tuple[float, float] = (0.2, 1.2)


# class -> (package, glob patterns inside it); file names chose them (docs/sound-sources-survey.md)
SOURCES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "cow mooing": (
        ("tuxpaint-stamps-default", ("animals/mammals/bovines/cow.ogg", "animals/mammals/bovines/cow_white.ogg",
                                     "animals/mammals/bovines/bull.ogg", "animals/mammals/bovines/bison.ogg")),
        ("megaglest-data", ("techs/megapack/commondata/sounds/cow_*.wav", "techs/megapack/factions/indian/units/bull/sounds/bull_*.wav")),
    ),
    "horse neighing": (
        ("tuxpaint-stamps-default", ("animals/mammals/equines/horse.ogg", "animals/mammals/equines/zebra.ogg")),
        ("wesnoth-1.16-data", ("horse-hit-*.ogg", "horse-die.ogg")),
    ),
    "sheep bleating": (
        ("tuxpaint-stamps-default", tuple(f"animals/mammals/bovines/{name}.ogg"
                                          for name in ("sheep", "sheep_lamb", "goat", "mountaingoat"))),
        ("megaglest-data", ("techs/megapack/factions/persian/units/sheep/sounds/sheep*.wav",)),
    ),
    "chickens clucking": (
        ("tuxpaint-stamps-default", ("animals/birds/hen.ogg", "animals/birds/rooster.ogg")),
        ("megaglest-data", ("techs/megapack/factions/egypt/units/chicken/sounds/chicken_*.wav",)),
    ),
    "pig grunting": (
        ("tuxpaint-stamps-default", ("animals/mammals/pig.ogg",)),
        ("megaglest-data", ("techs/megapack/commondata/sounds/pig_*.wav", "techs/megapack/factions/norsemen/units/wild_sow/sounds/pig_*.wav")),
    ),
    "wolf howling": (
        ("wesnoth-1.16-data", ("wolf-growl-*.ogg", "wolf-die-*.ogg")),
    ),
    "elephant trumpeting": (
        ("tuxpaint-stamps-default", ("animals/mammals/elephant.ogg",)),
        ("megaglest-data", ("techs/megapack/factions/persian/units/elephant/sounds/ele[0-9].wav",
                            "techs/megapack/factions/persian/units/elephant/sounds/eleattack*.wav")),
    ),
    "insects buzzing": (
        ("tuxpaint-stamps-default", ("animals/insects/bee.ogg", "animals/insects/hornet.ogg",
                                     "animals/insects/mosquito.ogg")),
        ("megaglest-data", ("techs/megapack/factions/indian/units/beehive/sounds/bee*.wav",)),
    ),
    "jet engine": (
        ("searchandrescue-data", ("jet_engine_*.wav",)),
    ),
    "thunder": (
        ("ufoai-sound", ("sound/ambience/thunder*.ogg",)),
        ("searchandrescue-data", ("thunder_*.wav",)),
        ("wesnoth-1.16-data", ("lightning.ogg",)),
    ),
    "glass breaking": (
        ("ufoai-sound", ("sound/misc/breakglass*.ogg",)),
    ),
    "footsteps": (
        ("ufoai-sound", ("sound/footsteps/[a-z]*[0-9].ogg",)),
    ),
    "explosion": (
        ("ufoai-sound", ("sound/weapons/explosion*.ogg", "sound/geoscape/combat-explosion.ogg")),
    ),
    # recorded voicings of classes another family renders too
    "helicopter": (
        ("searchandrescue-data", ("helicopter_engine_*.wav", "hh6*/engine*.wav")),
    ),
    "birds chirping": (
        ("tuxpaint-stamps-default", tuple(f"animals/birds/{bird}.ogg"
                                          for bird in ("blackbird", "cuckoo", "lark", "tucan", "seagull"))),
        ("wesnoth-1.16-data", ("ambient/birds*.ogg",)),
    ),
    "rain": (
        ("megaglest-data", tuple(f"tilesets/{tileset}/sounds/rain.*"
                                 for tileset in ("autumn", "birch_forest", "dark_forest", "desert2"))),
    ),
    "wind": (
        ("megaglest-data", ("tilesets/winter/sounds/wind.ogg", "tilesets/winter_forest/sounds/wind.ogg")),
    ),
    "crackling fire": (
        ("ufoai-sound", ("sound/ambience/fire*.ogg", "sound/ambience/smallfire.ogg")),
    ),
}
STYLES = {"footsteps": Style(gap=(0.15, 0.35)), "insects buzzing": Style(gap=(0.0, 0.3)),
          "chickens clucking": Style(gap=(0.05, 0.6)), "glass breaking": Style(gap=(0.5, 1.5)),
          "explosion": Style(gap=(0.4, 1.5))}

CLASSES = (
    SoundClass("cow mooing", FAMILY,
               ("a cow moos", "cows mooing", "the moo of a cow", "a cow bellowing", "cattle lowing"),
               ("a dairy cow calling from the field", "a bull bellowing loudly", "a herd of cattle calling")),
    SoundClass("horse neighing", FAMILY,
               ("a horse neighs", "a horse whinnying", "the neigh of a horse", "a horse snorting"),
               ("a startled horse whinnies", "a pony neighing in its stable", "a stallion calling out")),
    SoundClass("sheep bleating", FAMILY,
               ("a sheep bleats", "sheep bleating", "the baa of a sheep", "goats bleating"),
               ("a lamb calling for its mother", "a flock of sheep baaing", "a goat crying out")),
    SoundClass("chickens clucking", FAMILY,
               ("chickens cluck", "a hen clucking", "chickens clucking", "a rooster crows"),
               ("poultry cackling in a farmyard", "a cockerel crowing at dawn", "hens squawking")),
    SoundClass("pig grunting", FAMILY,
               ("a pig grunts", "pigs grunting", "a pig oinking", "a pig squealing"),
               ("a hog snorting in the mud", "piglets squealing", "a sow grunting")),
    SoundClass("wolf howling", FAMILY,
               ("a wolf howls", "a wolf growling", "wolves howling", "the snarl of a wolf"),
               ("a wild dog snarling", "a wolf baring its teeth with a growl", "a pack of wolves calling")),
    SoundClass("elephant trumpeting", FAMILY,
               ("an elephant trumpets", "an elephant trumpeting", "the trumpet call of an elephant",
                "elephants calling"),
               ("a bull elephant roaring", "a pachyderm trumpeting loudly", "an elephant blaring")),
    SoundClass("insects buzzing", FAMILY,
               ("bees buzz", "a bee buzzing", "insects buzzing", "the buzz of a mosquito", "a swarm of bees"),
               ("a hornet droning past", "the hum of a beehive", "a fly buzzing around")),
    SoundClass("jet engine", FAMILY,
               ("a jet engine roars", "a jet engine whining", "the roar of a jet aircraft", "a jet taking off"),
               ("a turbine spooling up", "an airliner engine starting", "the scream of jet turbines")),
    SoundClass("thunder", FAMILY,
               ("thunder rumbles", "thunder rumbling", "a clap of thunder", "a thunderstorm rolling"),
               ("a distant storm grumbling", "a lightning strike booming", "thunder crashing overhead")),
    SoundClass("glass breaking", FAMILY,
               ("glass shatters", "glass breaking", "a window smashing", "the crash of breaking glass"),
               ("a bottle smashing on the floor", "a pane of glass shattering", "shards of glass falling")),
    SoundClass("footsteps", FAMILY,
               ("footsteps", "someone walking", "a person walks", "footsteps on the ground", "steps approaching"),
               ("boots crunching on gravel", "someone pacing across the floor", "a person running past")),
    SoundClass("explosion", FAMILY,
               ("an explosion", "a loud explosion booms", "a blast goes off", "something explodes"),
               ("a bomb detonating", "a grenade bursting", "a deafening blast")),
)
OWN_CLASSES = frozenset(sound.name for sound in CLASSES)


@dataclass(frozen=True)
class Recording:
    """One installed recording: ``key`` is ``package:path`` (inside the package folder or its archive)."""

    key: str
    seconds: float

    @property
    def package(self) -> str:
        return self.key.split(":", 1)[0]


def discover_recordings(packages: dict[str, RecordingPackage] = PACKAGES) -> dict[str, tuple[Recording, ...]]:
    """Class -> the recordings installed here (sorted by key); classes with none are left out."""
    found: dict[str, tuple[Recording, ...]] = {}
    seen: set[str] = set()  # games copy one recording into several folders: keep the first copy only
    for class_name, sources in SOURCES.items():
        recordings = []
        for package_name, patterns in sources:
            package = packages.get(package_name)
            if package is None or package_name in VALIDATION_PACKAGES:
                continue
            for relative in _matching(package, patterns):
                key = f"{package_name}:{relative}"
                digest = _content_digest(key)
                if digest is None or digest in seen:
                    continue
                seen.add(digest)
                seconds = _active_seconds(key)
                if seconds >= 0.3:
                    recordings.append(Recording(key, seconds))
        if recordings:
            found[class_name] = tuple(sorted(recordings, key=lambda recording: recording.key))
    return found


def provenance(recordings: dict[str, tuple[Recording, ...]]) -> dict[str, dict]:
    """Package -> version, licence and file count, for the corpus manifest."""
    counts: dict[str, int] = {}
    for class_recordings in recordings.values():
        for recording in class_recordings:
            counts[recording.package] = counts.get(recording.package, 0) + 1
    return {name: {"version": package_version(name), "licence": PACKAGES[name].licence, "recordings": count}
            for name, count in sorted(counts.items())}


def unavailable_reason(resources: RenderResources) -> str | None:
    if not any(name in OWN_CLASSES for name in resources.recordings):
        return ("no field recordings installed (scripts/setup.sh installs the Debian packages "
                f"{', '.join(PACKAGES)})")
    return None


def classes_available(resources: RenderResources) -> tuple[SoundClass, ...]:
    """The classes of this family with recordings installed here."""
    return tuple(sound for sound in CLASSES if resources.recordings.get(sound.name))


def voices(class_name: str, resources: RenderResources) -> bool:
    """Whether recordings can voice ``class_name`` (of this family or another) here."""
    return bool(resources.recordings.get(class_name))


def split_recordings(recordings: tuple[Recording, ...], split: str) -> tuple[Recording, ...]:
    """The recordings a split may use: a quarter (by a hash of the key, at least one) are held out for valid and
    test; the rest train. A class with a single recording uses it everywhere."""
    if len(recordings) < 2:
        return recordings
    ranked = sorted(recordings, key=lambda recording: hashlib.sha256(recording.key.encode()).hexdigest())
    held = max(1, round(HELD_OUT_SHARE * len(ranked)))
    return tuple(ranked[:held]) if split in HELD_OUT_SPLITS else tuple(ranked[held:])


def plan(class_name: str, rng: np.random.Generator, duration: float, recordings: tuple[Recording, ...] = (),
         split: str = "train") -> dict:
    """Draw one render of ``class_name``: which recordings play, from where, when, how fast and how loud."""
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {duration} s")
    pool = split_recordings(tuple(recordings), split)
    if not pool:
        raise SourceUnavailable(f"no recordings of {class_name} installed")
    gap = STYLES.get(class_name, Style()).gap
    shots, time = [], float(rng.uniform(0.0, 0.25))
    while time < duration - 0.25 or not shots:
        recording = pool[int(rng.integers(len(pool)))]
        speed = float(rng.uniform(*SPEED_RANGE))
        length = min(recording.seconds / speed, duration - time)
        start = _loud_start(recording.key, length * speed, rng)
        shots.append({"key": recording.key, "start": round(start, 3), "onset": round(time, 3),
                      "length": round(length, 3), "speed": round(speed, 4),
                      "gain_db": round(float(rng.uniform(-4.0, 0.0)), 2)})
        time += length + float(rng.uniform(*gap))
    return {"family": FAMILY, "class": class_name, "duration": float(duration), "shots": shots}


def render(recipe: dict, sample_rate: int, resources: RenderResources | None = None) -> np.ndarray:
    """Play the recipe's shots: float32 mono of ``round(duration * sample_rate)`` samples, peak ``PEAK``."""
    if recipe.get("family") != FAMILY:
        raise ValueError(f"not a {FAMILY} recipe: family {recipe.get('family')!r}")
    length = round(recipe["duration"] * sample_rate)
    out = np.zeros(length, np.float64)
    for shot in recipe["shots"]:
        audio = _trimmed(shot["key"], sample_rate)
        want = max(1, round(shot["length"] * sample_rate))
        first = round(shot["start"] * sample_rate)
        piece = audio[first:first + round(want * shot["speed"]) + 1]
        if shot["speed"] != 1.0 and piece.size > 1:
            piece = soxr.resample(piece, sample_rate * shot["speed"], sample_rate)
        piece = fade_edges(piece[:want], round(FADE_SECONDS * sample_rate)) * 10 ** (shot["gain_db"] / 20)
        onset = round(shot["onset"] * sample_rate)
        span = max(0, min(piece.size, length - onset))
        out[onset:onset + span] += piece[:span]
    peak = float(np.abs(out).max(initial=0.0))
    if peak < 1e-5:
        raise SourceUnavailable(f"field recordings render silence for {recipe['class']}")
    return (out * (PEAK / peak)).astype(np.float32)


# Reading -----------------------------------------------------------------------------------------------------


def _matching(package: RecordingPackage, patterns: tuple[str, ...]) -> list[str]:
    """Paths (relative to the package folder or archive) that match ``patterns``, refusing reserved ones."""
    if package.archive is not None:
        archive = package.root / package.archive
        if not archive.is_file():
            return []
        refuse_reserved(archive)
        names = _archive_names(archive)
        return sorted({name for name in names for pattern in patterns if Path(name).match(pattern)
                       and name.count("/") == pattern.count("/")})
    if not package.root.is_dir():
        return []
    found = set()
    for pattern in patterns:
        for path in package.root.glob(pattern):
            if path.is_file() and path.suffix.lower() in (".wav", ".ogg", ".flac"):
                refuse_reserved(path)
                found.add(str(path.relative_to(package.root)))
    return sorted(found)


@functools.lru_cache(maxsize=8)
def _archive_names(archive: Path) -> tuple[str, ...]:
    with zipfile.ZipFile(archive) as opened:
        return tuple(name for name in opened.namelist() if not name.endswith("/"))


def _open(key: str):
    package_name, relative = key.split(":", 1)
    package = PACKAGES.get(package_name)
    if package is None:
        raise SourceUnavailable(f"recording {key}: unknown package {package_name}")
    try:
        if package.archive is not None:
            with zipfile.ZipFile(package.root / package.archive) as archive:
                return io.BytesIO(archive.read(relative))
        return (package.root / relative).resolve()
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise SourceUnavailable(f"recording {key}: not installed ({error})") from None


@functools.lru_cache(maxsize=512)
def _trimmed(key: str, sample_rate: int) -> np.ndarray:
    """The recording as float64 mono at ``sample_rate``, quiet ends trimmed."""
    try:
        audio, rate = soundfile.read(_open(key), dtype="float64", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise SourceUnavailable(f"recording {key}: unreadable ({error})") from None
    audio = audio.mean(axis=1)
    audio = soxr.resample(audio, rate, sample_rate) if rate != sample_rate else audio
    peak = float(np.abs(audio).max(initial=0.0))
    if peak <= 0:
        return audio[:0]
    loud = np.flatnonzero(np.abs(audio) >= peak * 10 ** (QUIET_DB / 20))
    return audio[loud[0]:loud[-1] + 1]


@functools.lru_cache(maxsize=512)
def _envelope(key: str) -> np.ndarray:
    """RMS of the trimmed recording in ``1 / ENVELOPE_RATE`` s frames (at 16 kHz)."""
    audio = _trimmed(key, 16000)
    hop = 16000 // ENVELOPE_RATE
    frames = audio[: audio.size // hop * hop].reshape(-1, hop) if audio.size >= hop else audio[None, :]
    return np.sqrt(np.mean(frames ** 2, axis=1))


def _content_digest(key: str) -> str | None:
    try:
        source = _open(key)
        data = source.getvalue() if isinstance(source, io.BytesIO) else source.read_bytes()
    except (SourceUnavailable, OSError):
        return None
    return hashlib.sha256(data).hexdigest()


def _active_seconds(key: str) -> float:
    try:
        return _trimmed(key, 16000).size / 16000
    except SourceUnavailable:
        return 0.0


def _loud_start(key: str, seconds: float, rng: np.random.Generator) -> float:
    """A start (s) in the recording for ``seconds`` of it: among the windows at least a quarter as loud (RMS) as
    the loudest, so a stretch of a long recording is never its quiet part."""
    envelope = _envelope(key)
    window = max(1, round(seconds * ENVELOPE_RATE))
    if envelope.size <= window:
        return 0.0
    energy = np.convolve(envelope ** 2, np.ones(window) / window, mode="valid")
    starts = np.flatnonzero(energy >= energy.max() / 16)  # a quarter of the RMS is 1/16 of the energy
    return float(starts[int(rng.integers(starts.size))]) / ENVELOPE_RATE
