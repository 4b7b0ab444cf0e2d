"""Example mixtures shipped with bisep, with the exact reference of every source in them.

``list_examples`` reads the shipped copy in ``bisep/assets/examples`` for ``bisep demo`` and ``bisep serve``;
:mod:`bisep.data.examples` renders them from the built-in corpus's sound world. Every source's reference is
exactly its share of the mixture (``mixture == sum(references)`` sample for sample, in 16-bit FLAC).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bisep.errors import BisepError

EXAMPLES_FOLDER = Path(__file__).resolve().parent / "assets" / "examples"
INDEX_NAME = "examples.json"


@dataclass(frozen=True)
class Example:
    """A shipped example: its caption, one prompt per source, the mixture and the reference of each prompt."""

    name: str
    caption: str
    prompts: tuple[str, ...]
    mixture: Path
    references: dict[str, Path]


def list_examples(folder: str | Path = EXAMPLES_FOLDER) -> list[Example]:
    """The examples in ``folder`` (default: the shipped ones), each file checked to exist inside the folder."""
    folder = Path(folder).resolve()
    index_path = folder / INDEX_NAME
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        rows = index["examples"]
        examples = [Example(row["name"], row["caption"], tuple(row["prompts"]),
                            _inside(folder, row["mixture"]),
                            {prompt: _inside(folder, row["references"][prompt]) for prompt in row["prompts"]})
                    for row in rows]
    except FileNotFoundError:
        raise BisepError(f"{index_path}: no examples index; reinstall bisep") from None
    except (ValueError, KeyError, TypeError) as error:
        raise BisepError(f"{index_path}: malformed examples index ({type(error).__name__}: {error})") from None
    for example in examples:
        for path in (example.mixture, *example.references.values()):
            if not path.is_file():
                raise BisepError(f"example {example.name}: {path} is missing; reinstall bisep")
    return examples


def _inside(folder: Path, relative: str) -> Path:
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder):
        raise ValueError(f"{relative} points outside the examples folder")
    return path
