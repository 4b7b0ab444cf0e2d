"""Rewordings of seen phrases, so the built-in model's text projection meets more than the handful of
phrasings each class has in a corpus.

A trained projection on top of a frozen sentence encoder learns the few sentences it sees and can land an
unseen paraphrase of the same sound somewhere else. Two generic rewordings widen what it sees without
inventing any content: framing templates of the kind captions and CLAP prompts use ("the sound of ...",
"... can be heard") and random deletion of words (as in EDA text augmentation), which keeps the content
words of most rewordings while breaking the exact sentences the projection could memorise. Neither knows any
class: they apply to any phrase of any corpus.
"""

from __future__ import annotations

import numpy as np

FRAMINGS = (
    "the sound of {}",
    "{} can be heard",
    "a recording of {}",
    "you can hear {}",
    "{} nearby",
    "{} in the distance",
    "a clip of {}",
    "listening to {}",
    "{} in this recording",
    "audio of {}",
    "{}, recorded up close",
    "somewhere, {}",
)


def delete_words(phrase: str, rng: np.random.Generator, probability: float = 0.2) -> str:
    """``phrase`` with each word dropped with ``probability``, never all of them."""
    words = phrase.split()
    if len(words) < 2:
        return phrase
    kept = [word for word in words if rng.random() >= probability]
    return " ".join(kept) if kept else str(rng.choice(words))


def reword(phrase: str, rng: np.random.Generator, probability: float) -> str:
    """With ``probability``, ``phrase`` framed by a template, with words deleted, or both (equally often);
    otherwise unchanged. Draws nothing from ``rng`` when ``probability`` is 0, so recipes without rewording
    reproduce exactly."""
    if probability <= 0 or rng.random() >= probability:
        return phrase
    kind = int(rng.integers(3))
    if kind != 0:
        phrase = delete_words(phrase, rng)
    if kind != 1:
        phrase = str(rng.choice(FRAMINGS)).format(phrase)
    return phrase
