"""Speech family: random English sentences spoken by eSpeak NG in varied male and female voices.

eSpeak NG is a formant synthesiser: robotic next to a human voice, but fully offline, a few milliseconds per
utterance and able to say any sentence, which gives the corpus an unlimited, captionable supply of speech with
sentences that can be kept disjoint across splits. It is driven through ctypes on the shared library of the
``espeakng-loader`` wheel; no ``espeak-ng`` program is needed.
"""

from __future__ import annotations

import _ctypes
import ctypes
import os
import re
import threading
from dataclasses import dataclass

import numpy as np
import soxr

from bisep.data.sources import RenderResources, SoundClass
from bisep.errors import SourceUnavailable

FAMILY = "speech"

CLASSES = (
    SoundClass(
        name="male speech",
        family=FAMILY,
        phrasings=(
            "a man speaks",
            "a man is talking",
            "a male voice speaking",
            "a man giving a speech",
            "a guy talking",
            "a man says something",
            "male speech",
        ),
        held_out_phrasings=(
            "a gentleman chatting",
            "an adult male narrating",
            "a masculine voice announcing something",
            "a fellow reading aloud",
        ),
    ),
    SoundClass(
        name="female speech",
        family=FAMILY,
        phrasings=(
            "a woman speaks",
            "a woman is talking",
            "a female voice speaking",
            "a woman giving a speech",
            "a lady talking",
            "a woman says something",
            "female speech",
        ),
        held_out_phrasings=(
            "a female speaker chatting",
            "an adult female narrating",
            "a feminine voice announcing something",
            "a lady reading aloud",
        ),
    ),
)

ESPEAK_SAMPLE_RATE = 22050  # Hz, fixed by eSpeak NG

# English accents: voice files in espeak-ng-data/lang/gmw, named as eSpeak matches them (file name).
ACCENTS = (
    "en",
    "en-US",
    "en-GB-x-rp",
    "en-029",
    "en-GB-scotland",
    "en-GB-x-gbclan",
    "en-GB-x-gbcwmd",
    "en-US-nyc",
)


@dataclass(frozen=True)
class VoiceRange:
    """What one class may draw: eSpeak voice variants (files in espeak-ng-data/voices/!v) and parameter ranges.

    ``pitch`` is eSpeak's pitch parameter (0-100, 50 keeps the variant's own base pitch, each 50 steps is one
    octave), ``pitch_range`` its intonation range (0 monotone, 50 normal, 100 wide), ``rate_wpm`` words per
    minute. Male variants sit at 70-90 Hz base pitch and female ones at 140-160 Hz; the bounds below put the
    median F0 of an utterance at 80-140 Hz for men and 160-300 Hz for women (measured).
    """

    variants: tuple[str, ...]
    pitch: tuple[int, int]
    pitch_range: tuple[int, int]
    rate_wpm: tuple[int, int]


VOICE_RANGES = {
    "male speech": VoiceRange(("m1", "m2", "m3", "m4", "m5", "m6", "m7"), (38, 70), (25, 80), (135, 195)),
    "female speech": VoiceRange(("f1", "f2", "f3", "f4", "f5"), (45, 78), (25, 80), (135, 195)),
}

PEAK = 0.9
FADE_OUT_SECONDS = 0.05  # when the speech is longer than the clip
LEAD_IN_SECONDS = 0.005  # kept before the first audible sample

# ---------------------------------------------------------------------------------------------------------------
# Random sentences

_SUBJECTS = (
    "my neighbour", "the teacher", "our driver", "the old farmer", "my sister", "your brother", "the manager",
    "a tourist", "the doctor", "my grandfather", "the new student", "our landlord", "the mechanic", "a stranger",
    "the captain", "my cousin", "the baker", "the nurse", "his uncle", "her aunt", "the engineer", "the pilot",
    "my colleague", "the postman", "the children", "my parents", "the neighbours", "our team", "the committee",
    "they", "we", "I", "she", "he", "you", "somebody", "the mayor", "the librarian", "the chef", "my friend",
    "your boss", "the coach", "the waiter", "the police officer", "my roommate",
)
_VERBS = (  # (base form, past tense), all transitive
    ("paint", "painted"), ("move", "moved"), ("clean", "cleaned"), ("buy", "bought"), ("sell", "sold"),
    ("fix", "fixed"), ("find", "found"), ("carry", "carried"), ("check", "checked"), ("open", "opened"),
    ("borrow", "borrowed"), ("return", "returned"), ("deliver", "delivered"), ("order", "ordered"),
    ("lose", "lost"), ("repair", "repaired"), ("pack", "packed"), ("wash", "washed"), ("measure", "measured"),
    ("photograph", "photographed"), ("describe", "described"), ("drop", "dropped"), ("keep", "kept"),
    ("share", "shared"), ("bring", "brought"), ("hide", "hid"), ("inspect", "inspected"),
    ("replace", "replaced"), ("wrap", "wrapped"), ("push", "pushed"), ("lend", "lent"), ("send", "sent"),
    ("forget", "forgot"), ("notice", "noticed"), ("mention", "mentioned"), ("test", "tested"),
    ("weigh", "weighed"), ("steal", "stole"), ("paint over", "painted over"), ("pick up", "picked up"),
)
_ADJECTIVES = (
    "old", "new", "red", "broken", "heavy", "tiny", "wooden", "blue", "expensive", "cheap", "green", "dusty",
    "spare", "shiny", "brown", "yellow", "empty", "small", "large", "strange", "lovely", "metal", "plastic",
    "antique", "famous", "orange",
)
_NOUNS = (
    "bicycle", "lamp", "letter", "ticket", "suitcase", "guitar", "map", "camera", "kettle", "ladder", "parcel",
    "window", "boat", "table", "chair", "umbrella", "blanket", "basket", "piano", "clock", "mirror", "bottle",
    "jacket", "hammer", "envelope", "painting", "radio", "telescope", "tent", "wheelbarrow", "notebook",
    "helmet", "carpet", "fridge", "trumpet", "box", "key", "phone", "laptop", "sofa",
)
_DETERMINERS = ("the", "a", "my", "your", "our", "their", "his", "her", "that", "this")
_ADVERBS = (
    "quietly", "quickly", "carefully", "finally", "suddenly", "slowly", "proudly", "secretly", "happily",
    "nervously", "easily", "accidentally", "gladly", "reluctantly", "never",
)
_PLACES = (
    "in the garden", "near the station", "at the market", "behind the library", "on the bridge",
    "in the kitchen", "at the airport", "by the river", "outside the bakery", "in the basement",
    "at the office", "on the beach", "in the car park", "at the school", "near the harbour", "in the attic",
    "at the hospital", "on the train", "in the village", "downtown", "across the street", "at the museum",
    "in the hallway", "on the balcony", "at the hotel", "by the lake", "in the shop", "at the stadium",
    "on the farm", "at the corner",
)
_PAST_TIMES = (
    "yesterday", "last night", "this morning", "last week", "last winter", "an hour ago", "at noon",
    "at midnight", "earlier today", "last summer", "the other day", "on the weekend",
)
_FUTURE_TIMES = (
    "tomorrow", "next week", "tonight", "this weekend", "next summer", "later today", "soon", "next month",
    "tomorrow morning", "after lunch",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
)
_TIME_UNITS = ("minute", "hour", "day", "week", "month", "year")
_QUESTION_WORDS = ("why", "when", "where", "how", "how often")
_EVENTS = (
    "the meeting", "the last train", "the concert", "the bus to town", "the ferry", "the lesson", "the match",
    "the party", "the flight", "the interview", "dinner", "the film", "the tour", "the exam",
)
_EVENT_VERBS = ("starts at", "leaves at", "begins at", "ends at", "was moved to", "is at")
_CURRENCIES = ("dollars", "euros", "pounds")
_OPENERS = (
    "I think ", "apparently, ", "to be honest, ", "I heard that ", "believe it or not, ", "luckily, ",
    "unfortunately, ", "as far as I know, ", "in my opinion, ", "she told me that ", "he said that ",
    "of course, ", "by the way, ", "I'm sure that ",
)
_NAMES = (
    "Anna", "Peter", "Maria", "David", "Sophie", "James", "Laura", "Thomas", "Emma", "Daniel", "Olivia",
    "Robert", "Grace", "Michael", "Julia", "Samuel", "Claire", "Henry", "Alice", "George", "Nina", "Oscar",
    "Helen", "Victor", "Rachel", "Simon", "Lucy", "Martin", "Kate", "Frank",
)
_TITLES = ("Mister", "Doctor", "Miss", "Professor")
_SURNAMES = (
    "Brown", "Green", "Taylor", "Walker", "Wilson", "Clarke", "Hughes", "Turner", "Baker", "Morgan", "Patel",
    "Fischer", "Novak", "Kowalski", "Rossi", "Garcia", "Murphy", "Kelly", "Larsen", "Jensen", "Dubois", "Moreau",
    "Bennett", "Foster", "Harper",
)
_GREETINGS = (
    "Good morning, {name}.", "Thank you very much, {name}.", "{name}, could you say that again?",
    "Hello {name}, can you hear me?", "Let's get started, {name}.", "That's a great idea, {name}.",
    "I'm not sure about that, {name}.", "See you tomorrow, {name}.", "Wait a moment please, {name}.",
    "Welcome back, {name}.", "{name}, are you coming with us?", "Nice to meet you, {name}.",
    "Sorry, {name}, I didn't catch that.", "Happy birthday, {name}!", "{name}, dinner is ready.",
    "Excuse me, {name}, where is the exit?",
)


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _maybe(rng: np.random.Generator, probability: float, text: str) -> str:
    return f" {text}" if rng.random() < probability else ""


def _noun_phrase(rng: np.random.Generator) -> str:
    determiner = _pick(rng, _DETERMINERS)
    words = ([_pick(rng, _ADJECTIVES)] if rng.random() < 0.6 else []) + [_pick(rng, _NOUNS)]
    if determiner == "a" and words[0][0] in "aeiou":
        determiner = "an"
    return " ".join([determiner, *words])


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "sh", "ch")):
        return noun + "es"
    return noun + "s"


def _number(rng: np.random.Generator) -> int:
    return int(rng.integers(2, 10)) if rng.random() < 0.5 else int(rng.integers(10, 1000))


def _past_time(rng: np.random.Generator) -> str:
    kind = rng.random()
    if kind < 0.4:
        return _pick(rng, _PAST_TIMES)
    if kind < 0.6:
        return f"on {_pick(rng, _WEEKDAYS)}"
    if kind < 0.8:
        return f"in {_pick(rng, _MONTHS)}"
    return f"{int(rng.integers(2, 13))} {_pick(rng, _TIME_UNITS)}s ago"


def _clock(rng: np.random.Generator) -> str:
    hour, minute = int(rng.integers(1, 13)), 5 * int(rng.integers(12))
    return f"{hour} o'clock" if minute == 0 else f"{hour}:{minute:02d}"


def _future_time(rng: np.random.Generator) -> str:
    kind = rng.random()
    if kind < 0.4:
        return _pick(rng, _FUTURE_TIMES)
    if kind < 0.6:
        return f"on {_pick(rng, _WEEKDAYS)}"
    if kind < 0.8:
        return f"at {_clock(rng)}"
    return f"in {int(rng.integers(2, 13))} {_pick(rng, _TIME_UNITS)}s"


def _statement(rng: np.random.Generator) -> str:
    adverb = _maybe(rng, 0.3, _pick(rng, _ADVERBS))
    return (
        f"{_pick(rng, _SUBJECTS)}{adverb} {_pick(rng, _VERBS)[1]} {_noun_phrase(rng)}"
        f"{_maybe(rng, 0.5, _pick(rng, _PLACES))}{_maybe(rng, 0.6, _past_time(rng))}."
    )


def _yes_no_question(rng: np.random.Generator) -> str:
    return (
        f"did {_pick(rng, _SUBJECTS)} {_pick(rng, _VERBS)[0]} {_noun_phrase(rng)}"
        f"{_maybe(rng, 0.4, _pick(rng, _PLACES))}{_maybe(rng, 0.5, _past_time(rng))}?"
    )


def _wh_question(rng: np.random.Generator) -> str:
    return (
        f"{_pick(rng, _QUESTION_WORDS)} did {_pick(rng, _SUBJECTS)} {_pick(rng, _VERBS)[0]} {_noun_phrase(rng)}"
        f"{_maybe(rng, 0.3, _past_time(rng))}?"
    )


def _plan_ahead(rng: np.random.Generator) -> str:
    adverb = _maybe(rng, 0.2, _pick(rng, _ADVERBS))
    return (
        f"{_pick(rng, _SUBJECTS)} will{adverb} {_pick(rng, _VERBS)[0]} {_noun_phrase(rng)}"
        f"{_maybe(rng, 0.4, _pick(rng, _PLACES))} {_future_time(rng)}."
    )


def _quantity(rng: np.random.Generator) -> str:
    verb = _pick(rng, ("bought", "ordered", "counted", "sold", "needed", "found", "packed"))
    adjective = _maybe(rng, 0.4, _pick(rng, _ADJECTIVES))
    return (
        f"{_pick(rng, _SUBJECTS)} {verb} {_number(rng)}{adjective} {_plural(_pick(rng, _NOUNS))}"
        f"{_maybe(rng, 0.5, _pick(rng, _PLACES))}{_maybe(rng, 0.5, _past_time(rng))}."
    )


def _price(rng: np.random.Generator) -> str:
    return f"the {_pick(rng, _ADJECTIVES)} {_pick(rng, _NOUNS)} costs {_number(rng)} {_pick(rng, _CURRENCIES)}."


def _appointment(rng: np.random.Generator) -> str:
    return f"{_pick(rng, _EVENTS)} {_pick(rng, _EVENT_VERBS)} {_clock(rng)}{_maybe(rng, 0.5, _future_time(rng))}."


def _opinion(rng: np.random.Generator) -> str:
    return _pick(rng, _OPENERS) + _statement(rng)


def _request(rng: np.random.Generator) -> str:
    opener = _pick(rng, ("please", "don't forget to", "could you", "remember to", "try to"))
    ending = "?" if opener == "could you" else "."
    return (
        f"{opener} {_pick(rng, _VERBS)[0]} {_noun_phrase(rng)}"
        f"{_maybe(rng, 0.5, _pick(rng, _PLACES))}{_maybe(rng, 0.5, _future_time(rng))}{ending}"
    )


def _greeting(rng: np.random.Generator) -> str:
    form = rng.random()
    if form < 1 / 3:
        name = _pick(rng, _NAMES)
    elif form < 2 / 3:
        name = f"{_pick(rng, _NAMES)} {_pick(rng, _SURNAMES)}"
    else:
        name = f"{_pick(rng, _TITLES)} {_pick(rng, _SURNAMES)}"
    return _pick(rng, _GREETINGS).format(name=name)


_TEMPLATES = (
    (_statement, 0.25),
    (_yes_no_question, 0.1),
    (_wh_question, 0.1),
    (_plan_ahead, 0.12),
    (_quantity, 0.1),
    (_price, 0.05),
    (_appointment, 0.05),
    (_opinion, 0.1),
    (_request, 0.1),
    (_greeting, 0.03),
)


def random_sentence(rng: np.random.Generator) -> str:
    """One English sentence with final punctuation, drawn from templates and word lists (> 10^9 sentences)."""
    templates, weights = zip(*_TEMPLATES)
    sentence = templates[int(rng.choice(len(templates), p=weights))](rng)
    return sentence[0].upper() + sentence[1:]


def estimated_seconds(text: str, rate_wpm: int) -> float:
    """Rough length of ``text`` spoken by eSpeak at ``rate_wpm`` (seconds, within ~15 %): fitted on 300 renders."""
    sentences = len(re.findall(r"[.?!]", text))
    return 0.0425 * len(text) * 175 / rate_wpm + 0.7 * sentences


# ---------------------------------------------------------------------------------------------------------------
# Planning


def plan(class_name: str, rng: np.random.Generator, duration: float) -> dict:
    """Draw the sentences and voice of one speech clip of ``duration`` seconds.

    Sentences are added while their estimated length stays within a random 60-120 % of the clip, so most clips
    end in silence and some are cut mid-word, as recorded speech is.
    """
    if class_name not in VOICE_RANGES:
        raise ValueError(f"unknown speech class {class_name!r}; expected one of {sorted(VOICE_RANGES)}")
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration} s")
    voice = VOICE_RANGES[class_name]
    accent, variant = _pick(rng, ACCENTS), _pick(rng, voice.variants)
    pitch = int(rng.integers(voice.pitch[0], voice.pitch[1] + 1))
    pitch_range = int(rng.integers(voice.pitch_range[0], voice.pitch_range[1] + 1))
    rate_wpm = int(rng.integers(voice.rate_wpm[0], voice.rate_wpm[1] + 1))
    target_seconds = float(rng.uniform(0.6, 1.2)) * duration
    text = random_sentence(rng)
    while estimated_seconds(longer := f"{text} {random_sentence(rng)}", rate_wpm) <= target_seconds:
        text = longer
    return {
        "family": FAMILY,
        "class": class_name,
        "duration": float(duration),
        "text": text,
        "voice": f"{accent}+{variant}",
        "pitch": pitch,
        "pitch_range": pitch_range,
        "rate_wpm": rate_wpm,
        "noise_seed": int(rng.integers(2**31 - 1)),
    }


def recipe_fingerprint(recipe: dict) -> str:
    """The spoken words, lowercase without punctuation: the corpus keeps these disjoint across splits."""
    return " ".join(re.findall(r"[a-z0-9']+", recipe["text"].lower()))


# ---------------------------------------------------------------------------------------------------------------
# eSpeak NG through ctypes

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit()
_BUFFER_MS = 200  # part of the output: eSpeak's echo voices sound slightly different with other buffer lengths
_PARAMETER_RATE, _PARAMETER_PITCH, _PARAMETER_RANGE = 1, 3, 4
_POSITION_CHARACTER = 1
_CHARACTERS_UTF8 = 1
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_close_library = getattr(_ctypes, "dlclose", None) or _ctypes.FreeLibrary

# libespeak-ng keeps one global synthesiser per process; threads take turns.
_ESPEAK_LOCK = threading.Lock()


def _espeak_paths() -> tuple[str, str]:
    """(shared library, espeak-ng-data directory) of the espeakng-loader wheel, or SourceUnavailable."""
    try:
        import espeakng_loader
    except ImportError:
        raise SourceUnavailable("speech needs the espeakng-loader package (pip install espeakng-loader)") from None
    library = espeakng_loader.get_library_path()
    if not os.path.isfile(library):
        raise SourceUnavailable(f"espeakng-loader ships no eSpeak NG library at {library}")
    try:
        data = espeakng_loader.get_data_path()
    except RuntimeError as error:
        raise SourceUnavailable(f"espeakng-loader ships no eSpeak NG data: {error}") from None
    return library, data


def _loaded_elsewhere(path: str) -> bool:
    """Whether this process already holds libespeak-ng (False where the system cannot tell)."""
    if not hasattr(os, "RTLD_NOLOAD"):
        return False
    try:
        handle = ctypes.CDLL(path, mode=os.RTLD_NOLOAD)
    except OSError:
        return False
    _close_library(handle._handle)
    return True


def _load_library(path: str) -> ctypes.CDLL:
    """A fresh copy of libespeak-ng, refused while another module holds one: its C state would carry over."""
    if _loaded_elsewhere(path):
        raise SourceUnavailable(
            "libespeak-ng is already loaded by another module of this process, so speech renders would not be "
            "reproducible; render speech in a process that does not use eSpeak elsewhere"
        )
    try:
        library = ctypes.CDLL(path)
    except OSError as error:
        raise SourceUnavailable(f"cannot load eSpeak NG from {path}: {error}") from None
    library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    library.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    library.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    library.espeak_Synth.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
        ctypes.c_void_p, ctypes.c_void_p,
    ]
    return library


def _speak(library: ctypes.CDLL, data_path: str, recipe: dict) -> bytes:
    """Initialise, say the recipe's text with its voice settings, terminate: int16 samples as bytes."""
    chunks = []

    def collect(samples, count, events):
        if count > 0:
            chunks.append(ctypes.string_at(samples, 2 * count))
        return 0

    callback = _SynthCallback(collect)
    output, options = _AUDIO_OUTPUT_SYNCHRONOUS, _INITIALIZE_DONT_EXIT
    if library.espeak_Initialize(output, _BUFFER_MS, data_path.encode(), options) != ESPEAK_SAMPLE_RATE:
        raise SourceUnavailable(f"eSpeak NG cannot initialise from its data in {data_path}")
    try:
        library.espeak_SetSynthCallback(callback)
        if library.espeak_SetVoiceByName(recipe["voice"].encode()) != 0:
            raise SourceUnavailable(f"eSpeak NG has no voice {recipe['voice']!r} in {data_path}")
        library.espeak_SetParameter(_PARAMETER_RATE, recipe["rate_wpm"], 0)
        library.espeak_SetParameter(_PARAMETER_PITCH, recipe["pitch"], 0)
        library.espeak_SetParameter(_PARAMETER_RANGE, recipe["pitch_range"], 0)
        library.espeak_ng_SetRandSeed(recipe["noise_seed"])  # breath noise; seeded from the clock otherwise
        text = recipe["text"].encode()
        if library.espeak_Synth(text, len(text) + 1, 0, _POSITION_CHARACTER, 0, _CHARACTERS_UTF8, None, None):
            raise SourceUnavailable(f"eSpeak NG failed to synthesise {recipe['text'][:40]!r}")
        library.espeak_Synchronize()
    finally:
        library.espeak_Terminate()
    return b"".join(chunks)


def synthesize(recipe: dict) -> np.ndarray:
    """The recipe's text spoken by eSpeak NG: int16 array (samples,) at 22050 Hz, with eSpeak's own silences.

    libespeak-ng keeps synthesis state in C statics (pitch-flutter phase, gain control, ...) that survive
    ``espeak_Terminate``, so one process saying the same text twice gets different samples. Loading the library
    afresh for every utterance and unloading it afterwards makes the output a function of the recipe alone, in
    every worker process, for about 3 ms. eSpeak does not free about 2 KB of voice data per reload: recycle
    workers that render hundreds of thousands of utterances.
    """
    library_path, data_path = _espeak_paths()
    with _ESPEAK_LOCK:
        library = _load_library(library_path)
        try:
            samples = _speak(library, data_path, recipe)
        finally:
            _close_library(library._handle)
    return np.frombuffer(samples, dtype=np.int16)


# ---------------------------------------------------------------------------------------------------------------
# Rendering


def _fit_length(audio: np.ndarray, length: int, fade_samples: int) -> np.ndarray:
    """Pad with silence, or cut and fade out over ``fade_samples``, to exactly ``length`` samples."""
    if len(audio) <= length:
        return np.pad(audio, (0, length - len(audio)))
    audio = audio[:length].copy()
    fade = min(fade_samples, length)
    audio[length - fade :] *= 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, fade, dtype=np.float32))
    return audio


def render(recipe: dict, sample_rate: int, resources: RenderResources) -> np.ndarray:
    """Speak the recipe: float32 (samples,) of ``round(duration * sample_rate)`` samples, peak 0.9.

    Speech starts at the first sample (eSpeak's lead-in silence is dropped), trailing silence fills a short
    sentence. Byte-identical for the same recipe, in any process.
    """
    audio = synthesize(recipe).astype(np.float32) / 32768
    audible = np.flatnonzero(np.abs(audio) > 0.01 * np.abs(audio).max())
    audio = audio[max(audible[0] - round(LEAD_IN_SECONDS * ESPEAK_SAMPLE_RATE), 0) :]
    if sample_rate != ESPEAK_SAMPLE_RATE:
        audio = soxr.resample(audio, ESPEAK_SAMPLE_RATE, sample_rate).astype(np.float32)
    audio = _fit_length(audio, round(recipe["duration"] * sample_rate), round(FADE_OUT_SECONDS * sample_rate))
    return (audio * (PEAK / np.abs(audio).max())).astype(np.float32)


def unavailable_reason(resources: RenderResources) -> str | None:
    """Why speech cannot be rendered here (one line), or None; tries one short utterance."""
    trial = {"text": "Test.", "voice": f"{ACCENTS[0]}+m1", "rate_wpm": 175, "pitch": 50, "pitch_range": 50}
    try:
        synthesize({**trial, "noise_seed": 1})
    except SourceUnavailable as error:
        return str(error)
    return None
