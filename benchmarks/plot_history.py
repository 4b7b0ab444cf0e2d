"""Plot a training run's curves from its ``history.jsonl``: loss terms per step and validation SI-SDR.

    .venv/bin/python benchmarks/plot_history.py RUN_FOLDER [RUN_FOLDER ...] --out curve.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot  # noqa: E402

TERMS = ("loss", "mix_and_separate", "consistency", "contrastive", "supervised")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    figure, (losses, validation) = pyplot.subplots(1, 2, figsize=(12, 4.5))
    for run in args.runs:
        records = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
        steps = [r for r in records if "loss" in r]
        for term in TERMS:
            values = [(r["step"], r[term]) for r in steps if term in r]
            if values:
                losses.plot(*zip(*values), label=f"{run.name}: {term}", linewidth=0.8)
        checks = [r for r in records if "validation_sdr" in r]
        if checks:
            validation.plot([r["step"] for r in checks], [r["validation_sdr"] for r in checks], "o-",
                            label=f"{run.name}: estimate")
            validation.plot([r["step"] for r in checks], [r["validation_mixture_sdr"] for r in checks], "k--",
                            label=f"{run.name}: unprocessed mixture")
    losses.set_yscale("log")
    losses.set_xlabel("step")
    losses.set_title("training loss terms")
    losses.legend(fontsize=7)
    validation.set_xlabel("step")
    validation.set_ylabel("SI-SDR (dB)")
    validation.set_title("validation (valid_2 compositions)")
    validation.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(args.out, dpi=100)


if __name__ == "__main__":
    main()
