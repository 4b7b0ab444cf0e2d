"""Copy a trained model folder into the package as a shipped model and record its checksums.

    python scripts/ship_model.py separator builtin runs/builtin-long/checkpoints/epoch0001 --grounding builtin
    python scripts/ship_model.py grounding builtin snapshots/grounding-field --world corpus/small

``--grounding NAME`` rewrites the separator's recorded grounding model (its training run names a folder, such
as ``snapshots/grounding-realistic``, that users do not have): ship that grounding model under NAME too, since a
separator is tied to its grounding model's text features (the loader checks them).

``--world CORPUS`` records in a grounding model's provenance the world of the corpus it was trained on
(``bisep.data.corpus.corpus_world``), for models trained before training recorded it; the benchmark uses the
shipped grounding model only on a corpus of that world.
"""

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from bisep.data.corpus import corpus_world
from bisep.pretrained import register_asset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["separator", "grounding"])
    parser.add_argument("name")
    parser.add_argument("source", type=Path)
    parser.add_argument("--grounding", help="separator only: the shipped grounding model it is used with")
    parser.add_argument("--world", type=Path, help="grounding only: the corpus it was trained on")
    arguments = parser.parse_args()
    source = arguments.source
    if not (source / "model.safetensors").is_file() or not (source / "config.json").is_file():
        raise SystemExit(f"{source}: not a model folder (config.json + model.safetensors)")
    if arguments.grounding and arguments.kind != "separator":
        raise SystemExit("--grounding applies to a separator")
    if arguments.world and arguments.kind != "grounding":
        raise SystemExit("--world applies to a grounding model")
    with tempfile.TemporaryDirectory() as staging:
        folder = Path(staging) / "model"
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns("state.pt"))
        config = json.loads((folder / "config.json").read_text())
        provenance = config.setdefault("provenance", {})
        if arguments.grounding:
            provenance["trained_with_grounding"] = provenance.get("grounding")
            provenance["grounding"] = arguments.grounding
        if arguments.world:
            provenance["world"] = corpus_world(json.loads((arguments.world / "manifest.json").read_text()))
        (folder / "config.json").write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
        print(register_asset(arguments.kind, arguments.name, folder))


if __name__ == "__main__":
    main()
