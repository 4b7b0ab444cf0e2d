"""Render the example mixtures shipped in bisep/assets/examples (deterministic for a seed).

    python scripts/make_examples.py [--seed 0] [--out bisep/assets/examples]
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bisep.data.examples import render_examples  # noqa: E402
from bisep.errors import BisepError  # noqa: E402
from bisep.examples import EXAMPLES_FOLDER  # noqa: E402


@click.command()
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=EXAMPLES_FOLDER, show_default=True)
def main(seed: int, out: Path) -> None:
    try:
        index = render_examples(out, seed=seed)
    except BisepError as error:
        raise click.ClickException(str(error)) from None
    total = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    for example in index["examples"]:
        print(f"{example['name']}: {example['caption']}  [{' | '.join(example['prompts'])}]")
    print(f"wrote {len(index['examples'])} examples to {out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
