"""Learning curve of a training run by the paper's metric: every saved checkpoint (``epochNNNN``) of a run scored
with ``bisep evaluate``'s code on a composition list (use a validation list: this picks checkpoints), mean SDR,
SDRi and SI-SDRi per step, written as JSON and a PNG.

    python benchmarks/checkpoint_curve.py runs/builtin-weak corpus/small/compositions/valid_2.csv \
        --limit 100 --out docs/figures/builtin_weak_curve
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("compositions", type=Path)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="Path without suffix for .json and .png.")
    arguments = parser.parse_args()
    from bisep.evaluate.run import evaluate_separator
    from bisep.separator.api import Separator
    from bisep.model_folder import read_model_folder

    import tempfile

    work = Path(tempfile.mkdtemp(prefix="bisep-curve-"))
    points = []
    checkpoints = sorted((arguments.run / "checkpoints").glob("epoch[0-9]*"))
    if not checkpoints:
        sys.exit(f"{arguments.run}: no checkpoints/epochNNNN folders")
    for folder in checkpoints:
        meta, _ = read_model_folder(folder)
        step = meta.get("provenance", {}).get("global_step")
        separator = Separator.from_pretrained(folder, device="cpu")
        result = evaluate_separator(separator, arguments.compositions, work / folder.name,
                                    oracles=False, jobs=arguments.jobs, limit=arguments.limit, examples=0,
                                    progress=False)
        overall = result["summary"]["model"]["overall"]
        point = {"checkpoint": folder.name, "step": step,
                 **{metric: overall[metric]["mean"] for metric in ("sdr", "sdri", "si_sdri", "clap_score")},
                 "mixture_sdr": result["summary"]["mixture"]["overall"]["sdr"]["mean"]}
        print(json.dumps(point), flush=True)
        points.append(point)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.with_suffix(".json").write_text(json.dumps(points, indent=1) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 3.5), dpi=110)
    steps = [p["step"] for p in points]
    axes.plot(steps, [p["sdr"] for p in points], "o-", label="estimate SDR")
    axes.plot(steps, [p["mixture_sdr"] for p in points], "--", label="mixture SDR (no separation)")
    axes.plot(steps, [p["sdri"] for p in points], "s-", label="SDRi")
    axes.set_xlabel("optimiser step")
    axes.set_ylabel("dB")
    axes.set_title(f"{arguments.run.name}: {arguments.compositions.stem}, first {arguments.limit} compositions",
                   fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(arguments.out.with_suffix(".png"))
    print(f"wrote {arguments.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
