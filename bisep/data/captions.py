"""AudioCaps-style captions composed from the phrases of a clip's sources.

The connective follows the sources' timing (overlapping sources: "while", "as", "and"; one after the other:
"followed by", "then", "before", "after") and loudness ("... in the background", "... in the distance"), and
the ground-truth phrase list comes back in caption order, so the caption parser can be scored exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OVERLAPPING_PAIRS = ("{a} while {b}", "{a} and {b}", "{a} as {b}", "{a} while {b}", "{a} and {b}")
SEQUENTIAL_PAIRS = ("{a} followed by {b}", "{a}, then {b}", "{a} before {b}", "{b} after {a}", "{a} and then {b}")
QUIET_SECOND = ("{a} with {b} in the background", "{a} as {b} in the background", "{a} while {b} in the distance")
QUIET_FIRST = ("{a} in the distance while {b}", "{a} in the background as {b}")
TRIPLES = ("{a}, {b} and {c}", "{a} while {b} and {c}", "{a} and {b} while {c}", "{a} as {b} and {c}")
SEQUENTIAL_TRIPLES = ("{a} and {b} followed by {c}", "{a} while {b}, then {c}")
QUIET_DB = 4.0


@dataclass(frozen=True)
class CaptionSource:
    """What the caption needs to know of one source: its phrase, start and end (seconds), level (dB)."""

    phrase: str
    onset: float
    offset: float
    level_db: float


def compose_caption(sources: list[CaptionSource], rng: np.random.Generator) -> tuple[str, list[str]]:
    """Returns ``(caption, phrases in caption order)`` for 1-3 sources."""
    ordered = sorted(sources, key=lambda source: source.onset)
    if len(ordered) == 1:
        template = "{a}"
    elif len(ordered) == 2:
        template = _pair_template(ordered[0], ordered[1], rng)
    elif len(ordered) == 3:
        sequential = ordered[2].onset >= max(ordered[0].offset, ordered[1].offset) - 0.1
        template = str(rng.choice(SEQUENTIAL_TRIPLES if sequential else TRIPLES))
    else:
        raise ValueError(f"captions hold 1 to 3 sources, got {len(ordered)}")
    names = dict(zip("abc", (source.phrase for source in ordered)))
    caption = template.format(**names)
    phrase_order = sorted(names, key=lambda key: template.index("{" + key + "}"))
    caption = caption[0].upper() + caption[1:]
    if rng.random() < 0.5:
        caption += "."
    return caption, [names[key] for key in phrase_order]


def _pair_template(first: CaptionSource, second: CaptionSource, rng: np.random.Generator) -> str:
    if second.onset >= first.offset - 0.1:
        return str(rng.choice(SEQUENTIAL_PAIRS))
    if second.level_db <= first.level_db - QUIET_DB and rng.random() < 0.7:
        return str(rng.choice(QUIET_SECOND))
    if first.level_db <= second.level_db - QUIET_DB and rng.random() < 0.7:
        return str(rng.choice(QUIET_FIRST))
    return str(rng.choice(OVERLAPPING_PAIRS))
