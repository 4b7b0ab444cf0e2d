"""General MIDI sources: the MUSIC-dataset instruments, a drum kit and GM sound effects, rendered from SF2 soundfonts.

``plan`` writes a short performance (notes in seconds, velocities, expression CC11 and pitch-bend curves, vibrato)
into the recipe; ``render`` plays it through tinysoundfont, so any General MIDI soundfont can voice it and the
melody stays fixed when the soundfont changes.

The erhu has no GM program. It is played on GM Fiddle (program 110) in the erhu's register (D4-E6), on the five
Chinese pentatonic modes, with pitch-bend slides into notes and a wide vibrato. TimGM6mb's Fiddle shares its
samples with its Violin, so with that soundfont the playing style, not the timbre, tells the two apart.

Soundfonts synthesise at 44.1 kHz (or the requested rate if higher) and soxr resamples the result: tinysoundfont
interpolates samples linearly without a low-pass, so rendering at 16 kHz directly folds the top octave of bright
sounds (bird tweets, hi-hats, xylophone) back into the band.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soxr
import tinysoundfont

from bisep.data.sources import RenderResources, SoundClass, sample_banks
from bisep.data.reserved import refuse_reserved
from bisep.errors import SourceUnavailable

Recipe = dict
Note = list  # [onset s, length s, MIDI key, velocity 1-127]
Curve = list  # [[time s, value], ...], linear between points

SYNTH_RATE = 44100  # Hz; see the module docstring
PEAK = 0.9  # every render is scaled to this peak
FADE_SECONDS = 0.03  # raised-cosine fade at the clip end, so a note still ringing does not stop with a click
CONTROL_PERIOD = 0.01  # s between expression and pitch-bend updates (100 Hz follows a 7 Hz vibrato smoothly)
FLUSH_SECONDS = 0.05  # tinysoundfont's reset fades voices over 10 ms; render this much after it to free them all
DRUM_CHANNEL = 9  # MIDI channel 10
DRUM_BANK = 128  # SF2 bank of percussion kits
EDGE_SECONDS = 0.1  # notes end at least this long before the clip end, leaving room for their release
MIN_DURATION = 0.5  # s; shorter clips leave no room for a phrase, a ring or a wave

SCALES = {  # semitones above the tonic
    "major": (0, 2, 4, 5, 7, 9, 11),
    "natural minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
    "major pentatonic": (0, 2, 4, 7, 9),
    "minor pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "gong": (0, 2, 4, 7, 9),
    "shang": (0, 2, 5, 7, 10),
    "jue": (0, 3, 5, 8, 10),
    "zhi": (0, 2, 5, 7, 9),
    "yu": (0, 3, 5, 7, 10),
}
PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
CHORD_SCALES = ("major", "natural minor", "dorian", "mixolydian", "harmonic minor")  # seven degrees: triads
MELODY_SCALES = CHORD_SCALES + ("major pentatonic", "minor pentatonic")
CHINESE_MODES = ("gong", "shang", "jue", "zhi", "yu")
PROGRESSIONS = ((0, 3, 4, 0), (0, 5, 3, 4), (0, 4, 5, 3), (1, 4, 0, 0), (0, 3, 0, 4), (5, 3, 0, 4))  # degrees
RHYTHMS = (  # note lengths in beats, with weights
    ((0.5, 1.0), (3, 2)),
    ((0.5, 1.0, 1.5, 2.0, 3.0), (1, 3, 1, 2, 1)),
    ((0.25, 0.5, 1.0), (3, 3, 1)),
    ((0.25, 0.5, 0.75, 1.5), (2, 1, 2, 1)),
)
STEPS = (-4, -3, -2, -1, 0, 1, 2, 3, 4)  # melodic motion in scale degrees
STEP_WEIGHTS = np.array((1, 1.5, 3, 6, 1, 6, 3, 1.5, 1)) / 24  # mostly by step, as tunes move
ARTICULATIONS = {  # how long a key is held, as a fraction of the time to the next note
    "legato": (0.95, 1.0), "normal": (0.75, 0.9), "staccato": (0.3, 0.55), "ringing": (1.2, 2.5)}
STRUMS = {4: ("D.D.D.D.", "D.DU.UDU", "D.DUDUDU", "D..UD.DU"), 3: ("D.D.D.", "D.DUDU")}  # eighth notes


@dataclass(frozen=True)
class Program:
    """One GM program (0-based number) and the keys the real instrument plays (MIDI, sounding pitch)."""

    number: int
    lowest_key: int
    highest_key: int


@dataclass(frozen=True)
class Technique:
    """How an instrument is played, which shapes the melodies ``plan`` draws for it.

    ``sustained`` instruments hold their tone by breath, bow or bellows and get expression (CC11) swells;
    the others decay after each strike and shape dynamics by velocity only.
    """

    sustained: bool
    vibrato_semitones: float = 0.0  # deepest vibrato; each clip draws 30-100 % of it
    scales: tuple[str, ...] = MELODY_SCALES
    textures: tuple[str, ...] = ("melody",)  # also "strum", "broken chords", "melody over chords", "oompah"
    chord_root: int = 45  # lowest MIDI key of accompaniment chord roots; they span the octave above
    articulations: tuple[str, ...] = ("legato", "normal", "staccato")
    slides: bool = False  # portamento into notes by pitch bend
    rolls: bool = False  # long notes become mallet tremolos
    tempo_bpm: tuple[float, float] = (60.0, 150.0)


@dataclass(frozen=True)
class GeneralMidiClass(SoundClass):
    """A sound class with the GM programs that voice it and the pattern ``plan`` draws its notes from."""

    programs: tuple[Program, ...] = ()
    pattern: str = "melody"  # melody, drums, chirps, rings, rotor, crowd, shots or swells
    technique: Technique | None = None


_STRINGS = dict(sustained=True, vibrato_semitones=0.3, articulations=("legato", "legato", "normal", "staccato"))
_WINDS = dict(sustained=True, articulations=("legato", "normal", "normal", "staccato"))

CLASSES = (
    GeneralMidiClass(
        "accordion", "instrument",
        ("an accordion plays", "someone playing the accordion", "accordion music", "an accordion melody",
         "a person playing an accordion tune"),
        ("a squeezebox playing", "someone pumping the bellows of a squeezebox", "a tune on the squeezebox"),
        programs=(Program(21, 53, 89),),
        technique=Technique(sustained=True, scales=CHORD_SCALES, chord_root=45,
                            textures=("melody over oompah", "melody over chords", "melody")),
    ),
    GeneralMidiClass(
        "acoustic guitar", "instrument",
        ("an acoustic guitar plays", "someone strumming an acoustic guitar", "acoustic guitar music",
         "a guitar being played", "someone playing the guitar"),
        ("someone picking on a six-string", "a folk guitar tune", "fingerpicked guitar strings"),
        programs=(Program(24, 40, 83), Program(25, 40, 83)),
        technique=Technique(sustained=False, scales=CHORD_SCALES, chord_root=40,
                            textures=("strum", "strum", "broken chords", "melody"),
                            articulations=("normal", "staccato", "ringing")),
    ),
    GeneralMidiClass(
        "cello", "instrument",
        ("a cello plays", "someone playing the cello", "cello music", "a cello melody", "a bowed cello"),
        ("a cellist performing", "a violoncello being bowed", "the low strings of a cello singing"),
        programs=(Program(42, 36, 76),),
        technique=Technique(**_STRINGS, tempo_bpm=(55.0, 130.0)),
    ),
    GeneralMidiClass(
        "clarinet", "instrument",
        ("a clarinet plays", "someone playing the clarinet", "clarinet music", "a clarinet melody",
         "a person blowing a clarinet"),
        ("a clarinetist performing", "a woodwind tune on the clarinet", "reedy clarinet notes"),
        programs=(Program(71, 50, 89),),
        technique=Technique(**_WINDS),
    ),
    GeneralMidiClass(
        "erhu", "instrument",
        ("an erhu plays", "someone playing the erhu", "erhu music", "an erhu melody", "a chinese erhu being bowed"),
        ("a huqin melody", "a traditional chinese two-stringed instrument", "someone bowing an erhu"),
        programs=(Program(110, 62, 88),),
        technique=Technique(sustained=True, vibrato_semitones=0.6, scales=CHINESE_MODES, slides=True,
                            articulations=("legato", "legato", "normal"), tempo_bpm=(55.0, 120.0)),
    ),
    GeneralMidiClass(
        "flute", "instrument",
        ("a flute plays", "someone playing the flute", "flute music", "a flute melody",
         "a person blowing into a flute"),
        ("a flutist performing", "an airy flute tune", "someone tootling on a flute"),
        programs=(Program(73, 60, 96),),
        technique=Technique(**_WINDS, vibrato_semitones=0.2),
    ),
    GeneralMidiClass(
        "saxophone", "instrument",
        ("a saxophone plays", "someone playing the saxophone", "saxophone music", "a sax solo",
         "a saxophone melody"),
        ("a saxophonist performing", "someone blowing a sax", "a jazzy sax line"),
        programs=(Program(64, 56, 87), Program(65, 49, 80), Program(66, 44, 75), Program(67, 36, 68)),
        technique=Technique(**_WINDS, vibrato_semitones=0.25, scales=MELODY_SCALES + ("blues", "blues")),
    ),
    GeneralMidiClass(
        "trumpet", "instrument",
        ("a trumpet plays", "someone playing the trumpet", "trumpet music", "a trumpet melody",
         "a brass trumpet sounding"),
        ("a trumpeter performing", "bright brass notes from a trumpet", "someone tooting a trumpet"),
        programs=(Program(56, 54, 84),),
        technique=Technique(**_WINDS, vibrato_semitones=0.1),
    ),
    GeneralMidiClass(
        "tuba", "instrument",
        ("a tuba plays", "someone playing the tuba", "tuba music", "a low tuba melody", "a person blowing a tuba"),
        ("a tubist performing", "deep oompah brass from a tuba", "a sousaphone bellowing"),
        programs=(Program(58, 28, 60),),
        technique=Technique(**_WINDS, vibrato_semitones=0.1, tempo_bpm=(60.0, 120.0)),
    ),
    GeneralMidiClass(
        "violin", "instrument",
        ("a violin plays", "someone playing the violin", "violin music", "a violin melody", "a bowed violin"),
        ("someone fiddling on a violin", "a violinist performing", "a fiddle tune"),
        programs=(Program(40, 55, 96),),
        technique=Technique(**_STRINGS),
    ),
    GeneralMidiClass(
        "xylophone", "instrument",
        ("a xylophone plays", "someone playing the xylophone", "xylophone music", "a xylophone melody",
         "mallets striking a xylophone"),
        ("a xylophonist performing", "wooden bars struck by mallets", "someone tapping out a tune on a xylophone"),
        programs=(Program(13, 65, 105),),
        technique=Technique(sustained=False, rolls=True, articulations=("normal", "staccato"),
                            tempo_bpm=(80.0, 170.0)),
    ),
    GeneralMidiClass(
        "piano", "instrument",
        ("a piano plays", "someone playing the piano", "piano music", "a piano melody",
         "a person playing piano chords"),
        ("a pianist performing", "someone tickling the ivories", "the keys of a piano being struck"),
        programs=(Program(0, 36, 96), Program(1, 36, 96)),
        technique=Technique(sustained=False, scales=CHORD_SCALES, chord_root=43,
                            textures=("melody over chords", "broken chords", "melody over chords", "melody"),
                            articulations=("legato", "normal", "staccato", "ringing")),
    ),
    GeneralMidiClass(
        "drum kit", "percussion",
        ("drums are playing", "someone playing the drums", "a drum beat", "a drum kit being played",
         "a drummer plays a groove"),
        ("a percussionist keeping time on a kit", "someone banging on a drum set", "a rock beat on the drums"),
        programs=(Program(0, 35, 81), Program(8, 35, 81), Program(16, 35, 81), Program(32, 35, 81),
                  Program(40, 35, 81)),
        pattern="drums",
    ),
    GeneralMidiClass(
        "birds chirping", "sound effect",
        ("birds chirp", "birds chirping", "a bird tweets", "bird calls", "birds singing"),
        ("songbirds warbling", "the twittering of birds", "a bird whistling its song"),
        programs=(Program(123, 36, 50),), pattern="chirps",
    ),
    GeneralMidiClass(
        "telephone ringing", "sound effect",
        ("a telephone rings", "a phone ringing", "a telephone ringing", "the ring of a telephone",
         "a phone rings repeatedly"),
        ("an old landline bell trilling", "an incoming call ringing out", "a ringing telephone bell"),
        programs=(Program(124, 38, 46),), pattern="rings",
    ),
    GeneralMidiClass(
        "helicopter", "sound effect",
        ("a helicopter flies", "a helicopter flying overhead", "helicopter noise",
         "the whir of helicopter blades", "a helicopter hovering"),
        ("a chopper passing by", "rotor blades thumping", "an aircraft rotor whirring"),
        programs=(Program(125, 36, 52),), pattern="rotor",
    ),
    GeneralMidiClass(
        "applause", "sound effect",
        ("people applaud", "a crowd clapping", "applause", "an audience applauding", "people clapping their hands"),
        ("a round of clapping from the audience", "spectators giving an ovation", "hands clapping in appreciation"),
        programs=(Program(126, 55, 72),), pattern="crowd",
    ),
    GeneralMidiClass(
        "gunshots", "sound effect",
        ("gunshots", "a gun fires", "gunshots ringing out", "someone firing a gun", "a gun being fired"),
        ("shots fired from a pistol", "a rifle going off", "gunfire cracking"),
        programs=(Program(127, 50, 62),), pattern="shots",
    ),
    GeneralMidiClass(
        "ocean waves", "sound effect",
        ("ocean waves crash", "waves crashing on the shore", "the sound of ocean waves", "waves breaking",
         "the surf rolling in"),
        ("the sea washing over a beach", "surf pounding the coastline", "water lapping at the shore"),
        programs=(Program(122, 55, 67),), pattern="swells",
    ),
)
_BY_NAME = {sound.name: sound for sound in CLASSES}


# Soundfonts -------------------------------------------------------------------------------------------------------

DEBIAN_SOUNDFONTS = Path("/usr/share/sounds/sf2")


def default_soundfonts() -> dict[str, Path]:
    """The GM soundfonts found on this machine by name: pretty_midi's TimGM6mb, then Debian's FluidR3.

    Debian's ``timgm6mb-soundfont`` is left out: it is an older build of pretty_midi's copy (same presets), and
    would only repeat the same rendering under another name. Pass it with ``--soundfont`` to use it.
    """
    candidates = []
    spec = importlib.util.find_spec("pretty_midi")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(("TimGM6mb", Path(spec.submodule_search_locations[0]) / "TimGM6mb.sf2"))
    candidates.append(("FluidR3_GM", DEBIAN_SOUNDFONTS / "FluidR3_GM.sf2"))
    found: dict[str, Path] = {}
    for name, path in candidates:
        if path.is_file() and not any(_same_content(path, other) for other in found.values()):
            found[name] = path
    return found


def load_soundfonts(paths) -> dict[str, Path]:
    """Check user-given SF2 files and name them by file stem; raise SourceUnavailable naming a bad file (and
    ReservedSource for a soundfont reserved for independent evaluation)."""
    found: dict[str, Path] = {}
    for given in paths:
        path = refuse_reserved(Path(given).expanduser())
        _validate(path)
        if any(_same_content(path, other) for other in found.values()):
            continue
        if path.stem in found:
            raise SourceUnavailable(f"soundfonts {found[path.stem]} and {path} share the name {path.stem!r}; "
                                    "rename one")
        found[path.stem] = path
    return found


def voicings(class_name: str, resources: RenderResources) -> list[str]:
    """What may voice ``class_name`` here: every soundfont, then the recorded-instrument banks that play it."""
    return sorted(resources.soundfonts) + sample_banks.voicings(class_name, resources.sample_banks)


def unavailable_reason(resources: RenderResources) -> str | None:
    """None when at least one soundfont renders every class here, else why none does."""
    if not resources.soundfonts:
        return "no General MIDI soundfont found (install pretty_midi or fluid-soundfont-gm, or give an .sf2 file)"
    problems = []
    for path in resources.soundfonts.values():
        try:
            _validate(Path(path))
            return None
        except SourceUnavailable as error:
            problems.append(str(error))
    return "no usable General MIDI soundfont: " + "; ".join(problems)


def _same_content(path: Path, other: Path) -> bool:
    if path.resolve() == other.resolve():
        return True
    if path.stat().st_size != other.stat().st_size:
        return False
    return _digest(path) == _digest(other)


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _required_presets() -> dict[tuple[int, int], str]:
    """(bank, program) -> class name, for every preset some recipe may select (drum kits fall back to kit 0)."""
    required = {}
    for sound in CLASSES:
        if sound.pattern == "drums":
            required[(DRUM_BANK, 0)] = sound.name
        else:
            required.update({(0, program.number): sound.name for program in sound.programs})
    return required


_VALIDATED: set[Path] = set()


def _validate(path: Path) -> None:
    """Raise SourceUnavailable unless ``path`` is an SF2 file holding every preset the classes use."""
    if not path.exists():
        raise SourceUnavailable(f"soundfont {path}: no such file")
    if not path.is_file():
        raise SourceUnavailable(f"soundfont {path}: not a file")
    resolved = path.resolve()
    if resolved in _VALIDATED:
        return
    synth, soundfont_id, _ = _synth(resolved, SYNTH_RATE)
    for (bank, program), name in _required_presets().items():
        if synth.sfpreset_name(soundfont_id, bank, program) is None:
            raise SourceUnavailable(f"soundfont {path}: not General MIDI, it lacks bank {bank} program {program} "
                                    f"(needed for {name})")
    _VALIDATED.add(resolved)


_SYNTHS: dict[tuple[Path, int], tuple[tinysoundfont.Synth, int, threading.Lock]] = {}


def _synth(path: Path, rate: int) -> tuple[tinysoundfont.Synth, int, threading.Lock]:
    """A loaded synthesiser per soundfont and rate, kept for the process: FluidR3_GM takes about 1 s to load."""
    key = (path.resolve(), rate)
    if key not in _SYNTHS:
        synth = tinysoundfont.Synth(samplerate=rate)
        try:
            soundfont_id = synth.sfload(str(key[0]))
        except (RuntimeError, OSError) as error:
            message = f"soundfont {path}: not a readable SF2 file (tinysoundfont cannot parse it)"
            raise SourceUnavailable(message) from error
        _SYNTHS[key] = (synth, soundfont_id, threading.Lock())
    return _SYNTHS[key]


# Planning ---------------------------------------------------------------------------------------------------------


@dataclass
class Performance:
    """What a planner draws: program, notes and control curves (times in s from the clip start)."""

    program: int
    bank: int = 0
    style: str = ""  # a few words for people reading manifests
    notes: list[Note] = field(default_factory=list)
    expression: Curve = field(default_factory=list)  # CC11, 0-127; empty means full
    pitch_bends: Curve = field(default_factory=list)  # semitones
    pitch_bend_range: int = 2  # semitones at full wheel
    vibrato: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # rate Hz, depth semitones, delay s


def plan(class_name: str, rng: np.random.Generator, duration: float, *, soundfonts=("TimGM6mb",)) -> Recipe:
    """Draw one render of ``class_name`` lasting ``duration`` s into a JSON-ready recipe.

    The sound starts within 0.1 s and stays active for 50-100 % of the clip (the corpus places sources in time
    itself); ``soundfonts`` are the names the recipe may pick from.
    """
    if class_name not in _BY_NAME:
        raise ValueError(f"unknown General MIDI class {class_name!r}; known: {', '.join(_BY_NAME)}")
    if not duration >= MIN_DURATION:
        raise ValueError(f"duration must be at least {MIN_DURATION} s, got {duration} s")
    if not soundfonts:
        raise ValueError("no soundfont names to choose from")
    sound = _BY_NAME[class_name]
    soundfont = str(soundfonts[int(rng.integers(len(soundfonts)))])
    start = float(rng.uniform(0.0, min(0.1, 0.05 * duration)))
    end = max(start + 0.05, min(duration * rng.uniform(0.5, 1.0), duration - EDGE_SECONDS))
    performance = PLANNERS[sound.pattern](sound, rng, start, end)
    performance.notes = [
        [_seconds(max(0.0, onset)), _seconds(max(0.02, min(length, end - onset))), int(key), int(velocity)]
        for onset, length, key, velocity in sorted(performance.notes) if onset < end
    ]
    performance.expression = _curve([[t, int(np.clip(round(v), 0, 127))] for t, v in performance.expression])
    performance.pitch_bends = _curve([[t, round(float(v), 3)] for t, v in performance.pitch_bends])
    performance.vibrato = [round(float(v), 3) for v in performance.vibrato]
    recipe = {"family": sound.family, "class": class_name, "duration": float(duration), "soundfont": soundfont}
    recipe.update(asdict(performance))
    return recipe


def recipe_fingerprint(recipe: Recipe) -> str:
    """Stable 16-hex-digit hash of what is played, whatever soundfont plays it.

    The corpus keeps fingerprints disjoint across splits, so a melody heard in training never reappears in a test
    split voiced by another soundfont.
    """
    played = {key: value for key, value in recipe.items() if key != "soundfont"}
    canonical = json.dumps(played, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _seconds(value: float) -> float:
    return round(float(value), 4)


def _curve(points: Curve) -> Curve:
    """Points in time order with strictly increasing times (the first of equal times wins), as np.interp needs."""
    curve: Curve = []
    for time, value in sorted(([_seconds(max(0.0, t)), v] for t, v in points), key=lambda point: point[0]):
        if not curve or time > curve[-1][0]:
            curve.append([time, value])
    return curve


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _velocity(rng: np.random.Generator, base: float, spread: float = 8.0) -> int:
    return int(np.clip(round(base + rng.normal(0.0, spread)), 15, 127))


def _plan_melodic(sound: GeneralMidiClass, rng: np.random.Generator, start: float, end: float) -> Performance:
    """A melody, a chordal accompaniment or both, in a random key, mode, tempo, register and articulation."""
    technique = sound.technique
    program = _pick(rng, sound.programs)
    texture = _pick(rng, technique.textures)
    tempo = float(rng.uniform(*technique.tempo_bpm))
    beat = 60.0 / tempo
    scale_name = _pick(rng, technique.scales)
    tonic = int(rng.integers(12))
    articulation = _pick(rng, technique.articulations)
    hold = ARTICULATIONS[articulation]
    loudness = float(rng.uniform(55, 110))
    notes: list[Note] = []
    lowest = program.lowest_key
    if texture != "melody":
        meter = 3 if rng.random() < 0.25 else 4
        notes += _accompaniment(rng, texture, SCALES[scale_name], tonic, technique.chord_root, beat, meter,
                                start, end, loudness - 10)
        lowest = max(lowest, technique.chord_root + 24)
    if texture in ("melody", "melody over chords", "melody over oompah"):
        keys = _melody_keys(rng, SCALES[scale_name], tonic, lowest, program.highest_key)
        melody = _melody(rng, keys, beat, start, end, hold, loudness)
        if technique.rolls:
            melody = _rolls(rng, melody)
        notes += melody
    performance = Performance(program.number, notes=notes,
                              style=f"{texture}, {PITCH_CLASSES[tonic]} {scale_name}, {tempo:.0f} bpm, {articulation}")
    if technique.sustained:
        performance.expression = _expression_walk(rng, start, end)
    if technique.vibrato_semitones and texture == "melody":
        depth = technique.vibrato_semitones * rng.uniform(0.3, 1.0)
        performance.vibrato = [rng.uniform(4.8, 6.8), depth, rng.uniform(0.1, 0.35)]
    if technique.slides:
        performance.pitch_bend_range = 12
        performance.pitch_bends = _slides(rng, sorted(notes))
    return performance


def _melody_keys(rng: np.random.Generator, scale, tonic: int, lowest: int, highest: int) -> list[int]:
    """The scale's keys in a random window of 10-19 semitones inside the instrument's range."""
    width = min(highest - lowest, int(rng.integers(10, 20)))
    bottom = int(rng.integers(lowest, highest - width + 1))
    return [key for key in range(bottom, bottom + width + 1) if (key - tonic) % 12 in scale]


def _melody(rng, keys: list[int], beat: float, start: float, end: float, hold: tuple[float, float],
            loudness: float) -> list[Note]:
    """A random walk over scale keys, mostly by step, with a random rhythm palette and occasional rests."""
    lengths, weights = _pick(rng, RHYTHMS)
    weights = np.array(weights, float) / sum(weights)
    rest_probability = rng.uniform(0.0, 0.15)
    hold_fraction = rng.uniform(*hold)
    index = len(keys) // 2 + int(rng.integers(-2, 3))
    notes: list[Note] = []
    time = start
    while end - time > 0.05:
        span = min(float(rng.choice(lengths, p=weights)) * beat, end - time)
        if notes and rng.random() < rest_probability:
            time += span
            continue
        index = _reflect(index + int(rng.choice(STEPS, p=STEP_WEIGHTS)), len(keys))
        on_beat = abs((time - start) / beat - round((time - start) / beat)) < 0.01
        onset = time + (rng.normal(0.0, 0.004) if notes else 0.0)
        notes.append([onset, span * hold_fraction, keys[index], _velocity(rng, loudness + 8 * on_beat)])
        time += span
    return notes


def _reflect(index: int, size: int) -> int:
    """Fold an index back into 0..size-1 like a melody turning at the edge of its register."""
    period = 2 * (size - 1)
    if period == 0:
        return 0
    index %= period
    return index if index < size else period - index


def _chord(scale, tonic: int, degree: int, lowest_root: int) -> tuple[int, int, int]:
    """Root key (in the octave from ``lowest_root``), third and fifth in semitones of a scale degree's triad."""
    root = lowest_root + (tonic + scale[degree % 7] - lowest_root) % 12
    third = (scale[(degree + 2) % 7] - scale[degree % 7]) % 12
    fifth = (scale[(degree + 4) % 7] - scale[degree % 7]) % 12
    return root, third, fifth


def _accompaniment(rng, texture: str, scale, tonic: int, lowest_root: int, beat: float, meter: int, start: float,
                   end: float, loudness: float) -> list[Note]:
    """Chords following a diatonic progression, one per bar: strummed, broken, block or oom-pah."""
    progression = _pick(rng, PROGRESSIONS)
    strum = _pick(rng, STRUMS[meter])
    strokes = [eighth for eighth, stroke in enumerate(strum) if stroke != "."] + [len(strum)]
    spread = rng.uniform(0.008, 0.025)  # s between strings of a strum
    arpeggio = _pick(rng, ((0, 1, 2, 3), (0, 1, 2, 3, 2, 1), (0, 2, 1, 3), (0, 3, 1, 2)))
    subdivision = 2 if rng.random() < 0.7 else 4  # broken-chord notes per beat
    block_chords_per_bar = 1 if rng.random() < 0.6 else 2
    bar = meter * beat
    notes: list[Note] = []
    for number, bar_start in enumerate(np.arange(start, end - 0.05, bar)):
        root, third, fifth = _chord(scale, tonic, progression[number % len(progression)], lowest_root)
        spread_voicing = (root, root + fifth, root + 12, root + 12 + third, root + 12 + fifth, root + 24)
        close_voicing = (root, root + third, root + fifth)
        if texture == "strum":
            for stroke, following in zip(strokes, strokes[1:]):
                down = strum[stroke] == "D"
                strings = spread_voicing if down else spread_voicing[:2:-1]  # up strokes catch the top strings
                velocity = loudness + (5 if down else -10)
                notes += [[bar_start + stroke * beat / 2 + i * spread, (following - stroke) * beat / 2, key,
                           _velocity(rng, velocity, 5)] for i, key in enumerate(strings)]
        elif texture == "broken chords":
            for step in range(meter * subdivision):
                notes.append([bar_start + step * beat / subdivision, beat * rng.uniform(1.0, 2.0),
                              spread_voicing[arpeggio[step % len(arpeggio)]],
                              _velocity(rng, loudness + 6 * (step % subdivision == 0))])
        elif texture == "melody over oompah":
            for count in range(meter):
                onset = bar_start + count * beat
                if count == 0 or (meter == 4 and count == 2):
                    bass = root - 12 + (fifth if count == 2 else 0)
                    notes.append([onset, beat * 0.8, bass, _velocity(rng, loudness + 5)])
                else:
                    notes += [[onset, beat * 0.45, key, _velocity(rng, loudness - 5, 4)] for key in close_voicing]
        else:
            for half in range(block_chords_per_bar):
                onset = bar_start + half * bar / block_chords_per_bar
                chord = (root - 12, *close_voicing) if half == 0 else close_voicing
                notes += [[onset, bar / block_chords_per_bar * 0.95, key, _velocity(rng, loudness, 4)]
                          for key in chord]
    return notes


def _rolls(rng: np.random.Generator, notes: list[Note]) -> list[Note]:
    """Turn some notes of 0.35 s or longer into mallet tremolos: strikes 1/12-1/18 s apart."""
    rolled: list[Note] = []
    for onset, length, key, velocity in notes:
        if length < 0.35 or rng.random() < 0.5:
            rolled.append([onset, length, key, velocity])
            continue
        period = 1.0 / rng.uniform(12.0, 18.0)
        rolled += [[onset + i * period, period, key, _velocity(rng, velocity - 10, 6)]
                   for i in range(int(length / period))]
    return rolled


def _slides(rng: np.random.Generator, notes: list[Note]) -> Curve:
    """Pitch-bend points (semitones) gliding into notes from the previous pitch or from just below."""
    points: Curve = [[0.0, 0.0]]
    for previous, note in zip(notes, notes[1:]):
        onset, length, key = note[0], note[1], note[2]
        interval = previous[2] - key
        legato = onset - (previous[0] + previous[1]) < 0.05
        if legato and 0 < abs(interval) <= 7 and rng.random() < 0.6:
            bend = interval
        elif rng.random() < 0.25:
            bend = -float(rng.uniform(1.0, 2.0))
        else:
            continue
        glide = min(rng.uniform(0.06, 0.16), 0.5 * length)
        for time, value in ((onset - 0.002, 0.0), (onset, bend), (onset + glide, 0.0)):
            if time > points[-1][0]:
                points.append([time, value])
    return points


def _expression_walk(rng: np.random.Generator, start: float, end: float) -> Curve:
    """Bow, breath or bellows pressure: a random walk (CC11 55-127) with a point every 0.3-0.8 s and a trend."""
    step = rng.uniform(0.3, 0.8)
    trend = rng.uniform(-20.0, 20.0) / max(end - start, step)
    value = rng.uniform(90.0, 120.0)
    curve = []
    for time in np.arange(start, end + step, step):
        curve.append([time, float(np.clip(value + trend * (time - start), 55, 127))])
        value = float(np.clip(value + rng.normal(0.0, 12.0), 60, 127))
    return curve


DRUM_STYLES = {  # steps per bar, steps per beat (sixteenths, or triplet eighths for the shuffle), tempo range bpm
    "rock": (16, 4, (90.0, 160.0)),
    "funk": (16, 4, (85.0, 115.0)),
    "shuffle": (12, 3, (70.0, 130.0)),
}
BRUSH_KIT = 40  # GM kit for the shuffle only: brushes on a rock beat sound wrong
KICK, SNARE, CLOSED_HAT, OPEN_HAT, RIDE = 36, 38, 42, 46, 51
CRASHES = (49, 57)
TOMS = (50, 48, 47, 45, 43, 41)  # high to low
CYMBALS = {49, 51, 52, 53, 55, 57, 59}
GROOVES = {  # part -> {step: probability}; drawn once per clip, so the groove repeats each bar
    "rock": {"kick": {0: 1, 8: 1, 10: 0.3, 6: 0.25, 3: 0.2, 14: 0.15}, "snare": {4: 1, 12: 1, 15: 0.1},
             "ghost": {}, "hat": {s: 1 for s in range(0, 16, 2)}, "open hat": {14: 0.3}},
    "funk": {"kick": {0: 1, 3: 0.4, 6: 0.5, 7: 0.3, 10: 0.5, 11: 0.3, 14: 0.3}, "snare": {4: 1, 12: 1},
             "ghost": {s: 0.3 for s in (2, 5, 7, 9, 11, 13, 15)}, "hat": {s: 1 for s in range(16)},
             "open hat": {6: 0.2, 14: 0.3}},
    "shuffle": {"kick": {0: 1, 6: 1, 5: 0.3, 11: 0.3, 8: 0.15}, "snare": {3: 1, 9: 1},
                "ghost": {s: 0.2 for s in (2, 5, 8, 11)}, "hat": {s: 1 for s in (0, 2, 3, 5, 6, 8, 9, 11)},
                "open hat": {}},
}


def _plan_drums(sound: GeneralMidiClass, rng: np.random.Generator, start: float, end: float) -> Performance:
    """A rock, funk or shuffle groove with fills on toms, crashes on phrase starts and humanised timing."""
    style = _pick(rng, tuple(DRUM_STYLES))
    steps, per_beat, tempo_range = DRUM_STYLES[style]
    tempo = float(rng.uniform(*tempo_range))
    step_seconds = 60.0 / tempo / per_beat
    groove = {part: [s for s, p in chances.items() if rng.random() < p] for part, chances in GROOVES[style].items()}
    cymbal = RIDE if rng.random() < 0.3 else CLOSED_HAT
    fill_every = int(_pick(rng, (2, 4, 4, 8)))
    loudness = rng.uniform(80, 115)
    notes: list[Note] = []

    def hit(step_time: float, key: int, velocity: float) -> None:
        length = 1.2 if key in CYMBALS else 0.2
        notes.append([step_time + rng.normal(0.0, 0.004), length, key, _velocity(rng, velocity, 6)])

    bar_seconds = steps * step_seconds
    for bar, bar_start in enumerate(np.arange(start, end - 0.05, bar_seconds)):
        if bar % fill_every == 0 and (bar > 0 or rng.random() < 0.5):
            hit(bar_start, _pick(rng, CRASHES), loudness + 5)
        fill_from = steps - per_beat * int(rng.integers(1, 3)) if (bar + 1) % fill_every == 0 else steps
        for step in range(steps):
            time = bar_start + step * step_seconds
            if time >= end:
                break
            if step >= fill_from:
                if rng.random() < 0.85:
                    drum = TOMS[min(len(TOMS) - 1, (step - fill_from) * len(TOMS) // (steps - fill_from))]
                    hit(time, SNARE if rng.random() < 0.2 else drum, loudness)
                continue
            accent = 10 if step % per_beat == 0 else 0
            if step in groove["hat"]:
                hat = OPEN_HAT if step in groove["open hat"] and cymbal == CLOSED_HAT else cymbal
                hit(time, hat, loudness - 20 + accent)
            if step in groove["kick"]:
                hit(time, KICK, loudness + accent)
            if step in groove["snare"]:
                hit(time, SNARE, loudness + 5)
            elif step in groove["ghost"]:
                hit(time, SNARE, rng.uniform(25, 45))
    kit = _pick(rng, [kit.number for kit in sound.programs if style == "shuffle" or kit.number != BRUSH_KIT])
    return Performance(kit, bank=DRUM_BANK, notes=notes, style=f"{style}, {tempo:.0f} bpm, kit {kit}")


def _plan_chirps(sound: GeneralMidiClass, rng: np.random.Generator, start: float, end: float) -> Performance:
    """Short chirps and quick trills at the calls of one to three birds, separated by pauses."""
    program = sound.programs[0]
    calls = rng.integers(program.lowest_key, program.highest_key + 1, size=int(rng.integers(1, 4)))
    notes: list[Note] = []
    time = start
    while time < end - 0.1:
        key = int(_pick(rng, calls))
        if rng.random() < 0.35:
            period = rng.uniform(0.08, 0.15)
            count = int(rng.integers(3, 7))
            notes += [[time + i * period, 0.9 * period, key, _velocity(rng, 95, 10)] for i in range(count)]
            time += count * period
        else:
            length = rng.uniform(0.1, 0.3)
            notes.append([time, length, key, _velocity(rng, 95, 12)])
            time += length
        time += rng.uniform(0.08, 0.9)
    return Performance(program.number, notes=notes, style=f"{len(calls)} calls")


def _plan_rings(sound: GeneralMidiClass, rng: np.random.Generator, start: float, end: float) -> Performance:
    """Telephone cadences on one bell: ring-ring pairs, single rings or long rings, each followed by a pause."""
    program = sound.programs[0]
    key = int(rng.integers(program.lowest_key, program.highest_key + 1))
    cadence = _pick(rng, ("double", "single", "long"))
    ring = {"double": rng.uniform(0.35, 0.45), "single": rng.uniform(0.5, 0.7), "long": rng.uniform(0.5, 0.6)}[cadence]
    rings_per_burst = {"double": 2, "single": 1, "long": int(rng.integers(2, 4))}[cadence]
    gap = rng.uniform(0.15, 0.25) if cadence == "double" else 0.0  # between rings of a burst, s
    pause = rng.uniform(0.8, 2.0)
    loudness = rng.uniform(85, 120)
    notes: list[Note] = []
    time = start
    while time < end - 0.1:
        for _ in range(rings_per_burst):
            notes.append([time, ring, key, _velocity(rng, loudness, 4)])
            time += ring + gap
        time += pause
    return Performance(program.number, notes=notes, style=f"{cadence} rings every {ring:.2f} s")


def _plan_rotor(sound: GeneralMidiClass, rng: np.random.Generator, start: float, end: float) -> Performance:
    """One long rotor note: flying by (swell and Doppler drop), hovering, approaching or leaving."""
    program = sound.programs[0]
    key = int(rng.integers(program.lowest_key, program.highest_key + 1))
    flight = _pick(rng, ("fly-by", "fly-by", "hover", "approach", "leave"))
    span = end - start
    low, high = rng.uniform(25, 60), rng.uniform(105, 127)
    shift = rng.uniform(0.3, 0.8)  # Doppler, semitones
    bends: Curve = []
    if flight == "fly-by":
        passing = start + span * rng.uniform(0.3, 0.7)
        width = min(rng.uniform(0.2, 0.5), 0.25 * span)
        expression = [[start, low], [passing, high], [end, low]]
        bends = [[start, shift], [passing - width, 0.9 * shift], [passing + width, -0.9 * shift], [end, -shift]]
    elif flight == "hover":
        expression = [[t, rng.uniform(high - 15, high)] for t in np.arange(start, end + 0.5, 0.5)]
    elif flight == "approach":
        expression = [[start, low], [end, high]]
        bends = [[start, shift], [end, shift]]
    else:
        expression = [[start, high], [end, low]]
        bends = [[start, -shift], [end, -shift]]
    notes = [[start, span, key, _velocity(rng, 110, 8)]]
    return Performance(program.number, notes=notes, expression=expression, pitch_bends=bends, style=flight)


def _plan_crowd(sound: GeneralMidiClass, rng: np.random.Generator, start: float, end: float) -> Performance:
    """One or two overlapping applause notes rising quickly, fluctuating, then dying away."""
    program = sound.programs[0]
    keys = rng.choice(np.arange(program.lowest_key, program.highest_key + 1), size=int(rng.integers(1, 3)),
                      replace=False)
    notes = [[start + (0.0 if i == 0 else rng.uniform(0.0, 0.3)), end - start, int(key), _velocity(rng, 105, 10)]
             for i, key in enumerate(keys)]
    span = end - start
    rise, fade = min(rng.uniform(0.15, 0.6), 0.3 * span), min(rng.uniform(0.5, 1.5), 0.4 * span)
    peak = rng.uniform(105, 127)
    expression = [[start, 35.0]]
    expression += [[t, peak - rng.uniform(0, 12)] for t in np.arange(start + rise, end - fade, 0.4)]
    expression += [[end - fade, peak - 5], [end, 25.0]]
    return Performance(program.number, notes=notes, expression=expression, style=f"{len(keys)} crowd layers")


def _plan_shots(sound: GeneralMidiClass, rng: np.random.Generator, start: float, end: float) -> Performance:
    """One to six isolated shots, sometimes as quick double taps, each left to ring out."""
    program = sound.programs[0]
    base = int(rng.integers(program.lowest_key, program.highest_key + 1))
    notes: list[Note] = []
    time = start
    for _ in range(int(rng.integers(1, 7))):
        if time >= end - 0.1:
            break
        key = int(np.clip(base + rng.integers(-2, 3), 0, 127))
        notes.append([time, rng.uniform(1.5, 2.5), key, _velocity(rng, 112, 10)])
        time += rng.uniform(0.12, 0.25) if rng.random() < 0.3 else rng.uniform(0.4, 2.0)
    return Performance(program.number, notes=notes, style=f"{len(notes)} shots")


def _plan_swells(sound: GeneralMidiClass, rng: np.random.Generator, start: float, end: float) -> Performance:
    """Waves every 2.5-6 s: each a new surf note under a swell from a trough up to a crest, ebbing by the end."""
    program = sound.programs[0]
    notes: list[Note] = []
    expression: Curve = []
    time = start
    while time < end - 0.1:
        period = rng.uniform(2.5, 6.0)
        crest = time + period * rng.uniform(0.35, 0.6)
        notes.append([time, period + 0.5, int(rng.integers(program.lowest_key, program.highest_key + 1)),
                      _velocity(rng, 105, 10)])
        expression += [[time, rng.uniform(30, 55)], [crest, rng.uniform(100, 127)]]
        time += period * rng.uniform(0.85, 1.0)
    expression = [point for point in expression if point[0] < end] + [[end, rng.uniform(30, 55)]]
    return Performance(program.number, notes=notes, expression=expression, style=f"{len(notes)} waves")


PLANNERS = {
    "melody": _plan_melodic,
    "drums": _plan_drums,
    "chirps": _plan_chirps,
    "rings": _plan_rings,
    "rotor": _plan_rotor,
    "crowd": _plan_crowd,
    "shots": _plan_shots,
    "swells": _plan_swells,
}


# Rendering --------------------------------------------------------------------------------------------------------


def render(recipe: Recipe, sample_rate: int, resources: RenderResources) -> np.ndarray:
    """Play ``recipe`` on its soundfont: float32 mono, ``round(duration * sample_rate)`` samples, peak 0.9.

    Deterministic: the cached synthesiser is reset before each render, so the same recipe gives the same bytes
    whatever was rendered before it.
    """
    if recipe.get("class") not in _BY_NAME:
        raise ValueError(f"not a General MIDI recipe: class {recipe.get('class')!r}")
    name = recipe["soundfont"]
    if name in resources.sample_banks:
        return sample_banks.render(recipe, sample_rate, resources.sample_banks[name])
    if name not in resources.soundfonts:
        raise SourceUnavailable(f"soundfont {name!r} is not available here (have: "
                                f"{', '.join(sorted(resources.soundfonts)) or 'none'})")
    path = Path(resources.soundfonts[name])
    _validate(path)
    rate = max(int(sample_rate), SYNTH_RATE)
    synth, soundfont_id, lock = _synth(path, rate)
    with lock:
        frames = _perform(synth, soundfont_id, recipe, rate, int(np.ceil(recipe["duration"] * rate)))
    audio = frames.mean(axis=1)
    if rate != sample_rate:
        audio = soxr.resample(audio, rate, sample_rate)
    length = round(recipe["duration"] * sample_rate)
    audio = np.pad(audio[:length], (0, max(0, length - audio.size)))
    fade = min(length, round(FADE_SECONDS * sample_rate))
    audio[length - fade:] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, fade))
    peak = float(np.abs(audio).max(initial=0.0))
    if peak < 1e-5:
        raise SourceUnavailable(f"soundfont {path}: program {recipe['program']} (bank {recipe['bank']}) renders "
                                f"silence for {recipe['class']}")
    return (audio * (PEAK / peak)).astype(np.float32)


def _perform(synth: tinysoundfont.Synth, soundfont_id: int, recipe: Recipe, rate: int, length: int) -> np.ndarray:
    """Run the recipe's events through the synthesiser: (length, 2) float32 stereo frames at ``rate`` Hz."""
    drums = recipe["bank"] == DRUM_BANK
    channel = DRUM_CHANNEL if drums else 0
    synth.soundfonts[soundfont_id].reset()  # tinysoundfont's tsf_reset: all voices ending, channels to defaults
    synth.generate_simple(round(FLUSH_SECONDS * rate))
    synth.program_select(channel, soundfont_id, 0 if drums else recipe["bank"], recipe["program"], drums)
    synth.pitchbend_range(channel, recipe["pitch_bend_range"])
    frames = np.zeros((length, 2), np.float32)
    position = 0
    for sample, _, action, value, velocity in _events(recipe, rate):
        if sample >= length:
            break
        if sample > position:
            synth.generate_simple(sample - position, buffer=frames[position:sample])
            position = sample
        if action == "expression":
            synth.control_change(channel, 11, value)
        elif action == "bend":
            synth.pitchbend(channel, value)
        elif action == "off":
            synth.noteoff(channel, value)
        else:
            synth.noteon(channel, value, velocity)
    if position < length:
        synth.generate_simple(length - position, buffer=frames[position:])
    return frames


def _events(recipe: Recipe, rate: int) -> list[tuple[int, int, str, int, int]]:
    """(sample, order, action, value, velocity), sorted; at one sample controls come first, then offs, then ons."""
    events = []
    for onset, length, key, velocity in recipe["notes"]:
        start = round(onset * rate)
        events.append((start, 2, "on", key, velocity))
        events.append((max(start + 1, round((onset + length) * rate)), 1, "off", key, 0))
    onsets = np.array([note[0] for note in recipe["notes"]])
    last = max(onset + length for onset, length, _, _ in recipe["notes"]) + 0.5
    rate_hz, depth, delay = recipe["vibrato"]
    bends, expression = recipe["pitch_bends"], recipe["expression"]
    breakpoints = [t for t, _ in bends + expression]
    times = np.unique(np.concatenate([np.arange(0.0, last, CONTROL_PERIOD), breakpoints, onsets]))
    if bends or depth:
        semitones = np.interp(times, *zip(*bends)) if bends else np.zeros_like(times)
        if depth:
            since = times - onsets[np.maximum(np.searchsorted(onsets, times, side="right") - 1, 0)]
            ramp = np.clip((since - delay) / 0.25, 0.0, 1.0) * (times >= onsets[0])
            semitones = semitones + depth * ramp * np.sin(2 * np.pi * rate_hz * since)
        wheel = np.clip(np.round(8192 + semitones / recipe["pitch_bend_range"] * 8192), 0, 16383).astype(int)
        events += _changes(times, wheel, rate, "bend", 8192)
    if expression:
        events += _changes(times, np.round(np.interp(times, *zip(*expression))).astype(int), rate, "expression", 127)
    return sorted(events, key=lambda event: event[:2])


def _changes(times: np.ndarray, values: np.ndarray, rate: int, action: str, initial: int) -> list[tuple]:
    """Control events only where the quantised value changes (from the MIDI default ``initial``)."""
    previous = np.concatenate([[initial], values[:-1]])
    return [(round(t * rate), 0, action, int(v), 0) for t, v in zip(times[values != previous],
                                                                      values[values != previous])]
