"""Copy a trained model folder into the package as a shipped model and record its checksums.

    python scripts/ship_model.py separator builtin runs/builtin-weak/checkpoints/best
    python scripts/ship_model.py grounding builtin runs/grounding-small
"""

import sys
from pathlib import Path

from bisep.pretrained import register_asset

if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("separator", "grounding"):
        raise SystemExit(__doc__)
    kind, name, source = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    if not (source / "model.safetensors").is_file() or not (source / "config.json").is_file():
        raise SystemExit(f"{source}: not a model folder (config.json + model.safetensors)")
    print(register_asset(kind, name, source))
