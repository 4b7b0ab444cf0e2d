"""Copy a trained model folder into the package as a shipped model and record its checksums.

    python scripts/ship_model.py separator builtin runs/builtin-long/checkpoints/epoch0001 --grounding builtin
    python scripts/ship_model.py grounding builtin snapshots/grounding-realistic

``--grounding NAME`` rewrites the separator's recorded grounding model (its training run names a folder, such
as ``snapshots/grounding-realistic``, that users do not have): ship that grounding model under NAME too, since a
separator is tied to its grounding model's text features (the loader checks them).
"""

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from bisep.pretrained import register_asset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["separator", "grounding"])
    parser.add_argument("name")
    parser.add_argument("source", type=Path)
    parser.add_argument("--grounding", help="separator only: the shipped grounding model it is used with")
    arguments = parser.parse_args()
    source = arguments.source
    if not (source / "model.safetensors").is_file() or not (source / "config.json").is_file():
        raise SystemExit(f"{source}: not a model folder (config.json + model.safetensors)")
    if arguments.grounding and arguments.kind != "separator":
        raise SystemExit("--grounding applies to a separator")
    with tempfile.TemporaryDirectory() as staging:
        folder = Path(staging) / "model"
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns("state.pt"))
        if arguments.grounding:
            config = json.loads((folder / "config.json").read_text())
            provenance = config.setdefault("provenance", {})
            provenance["trained_with_grounding"] = provenance.get("grounding")
            provenance["grounding"] = arguments.grounding
            (folder / "config.json").write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
        print(register_asset(arguments.kind, arguments.name, folder))


if __name__ == "__main__":
    main()
