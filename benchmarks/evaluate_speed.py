"""Evaluation speed, and bisep's bss_eval (fast_bss_eval) against mir_eval: largest difference and speed ratio.

    .venv/bin/python benchmarks/evaluate_speed.py --corpus corpus/small [--preset configs/builtin/weak.yaml]
        [--model FOLDER] [--jobs 2] [--agreement 20] [--skip-runs] [--out /tmp/bisep-evaluate-benchmark]

1. Wall time of ``evaluate_separator`` on the corpus's ``test_2`` list (1000 two-source compositions of 4 s in
   the small corpus), without and with the oracle reference points, for a separator of the preset's size: a
   randomly initialised one unless ``--model`` is given (the time does not depend on the weights).
2. Agreement with mir_eval's ``bss_eval_sources(..., compute_permutation=False)`` on random signals and on the first
   ``--agreement`` compositions (their ideal-ratio-mask estimates and leaky estimates): the largest difference of
   SDR, SIR and SAR (and of the mixture's SDR and SIR) in dB.
3. Speed ratio on those compositions: scoring the estimates and the mixture of one composition with bisep
   (one fast_bss_eval call) against mir_eval (two ``bss_eval_sources`` calls), both on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from timing import median_seconds


def random_model_folder(preset: str, folder: Path) -> Path:
    import torch

    from bisep.config import load_config
    from bisep.model_folder import write_model_folder
    from bisep.separator.model import TextQueriedSeparator
    from bisep.train.config import TrainConfig

    config = load_config(TrainConfig, preset, [])
    torch.manual_seed(0)
    return write_model_folder(folder, TextQueriedSeparator(config.model), config.model,
                              {"grounding": config.grounding, "mode": "random initialisation (speed only)"})


def mir_eval_scores(references: np.ndarray, estimates: np.ndarray, mixture: np.ndarray) -> tuple:
    from mir_eval.separation import bss_eval_sources

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        sources = bss_eval_sources(references, estimates, compute_permutation=False)[:3]
        repeated = np.repeat(mixture[None], references.shape[0], 0)
        mixture_scores = bss_eval_sources(references, repeated, compute_permutation=False)[:2]
    return sources, mixture_scores


def largest_difference(references: np.ndarray, estimates: np.ndarray, mixture: np.ndarray) -> float:
    from bisep.evaluate.metrics import score_composition

    ours = score_composition(references, {"estimate": estimates}, mixture)
    (sdr, sir, sar), (mixture_sdr, mixture_sir) = mir_eval_scores(references, estimates, mixture)
    pairs = [(ours["estimate"]["sdr"], sdr), (ours["estimate"]["sir"], sir), (ours["estimate"]["sar"], sar),
             (ours["mixture"]["sdr"], mixture_sdr), (ours["mixture"]["sir"], mixture_sir)]
    return max(float(np.abs(np.asarray(a) - b).max()) for a, b in pairs)


def agreement_and_speed(corpus: Path, count: int, n_fft: int, hop_length: int) -> dict:
    from bisep.evaluate.compositions import CompositionList
    from bisep.evaluate.metrics import score_composition
    from bisep.evaluate.oracles import IdealMasks

    rng = np.random.default_rng(0)
    random_difference = 0.0
    for sources in (2, 3):
        references = rng.standard_normal((sources, 64000))
        estimates = references + 0.3 * (references.sum(0) - references) + 0.1 * rng.standard_normal(references.shape)
        random_difference = max(random_difference, largest_difference(references, estimates, references.sum(0)))
    compositions = CompositionList.open(corpus / "compositions" / "test_2.csv")
    masks = IdealMasks(n_fft, hop_length)
    real_difference, ours_seconds, theirs_seconds = 0.0, [], []
    for composition in compositions.compositions[:count]:
        loaded = compositions.load(composition)
        references, mixture = loaded.references.astype(np.float64), loaded.mixture.astype(np.float64)
        leaky = references + 0.3 * (mixture - references) + 0.01 * rng.standard_normal(references.shape)
        for estimates in (masks(loaded.references)["irm"].astype(np.float64), leaky):
            real_difference = max(real_difference, largest_difference(references, estimates, mixture))
        ours_seconds.append(median_seconds(lambda: score_composition(references, {"model": leaky}, mixture), 3))
        theirs_seconds.append(median_seconds(lambda: mir_eval_scores(references, leaky, mixture), 1, warmups=0))
    return {"largest_difference_db_random": random_difference, "largest_difference_db_real": real_difference,
            "compositions": count, "samples": int(references.shape[-1]),
            "bisep_seconds_per_composition": float(np.mean(ours_seconds)),
            "mir_eval_seconds_per_composition": float(np.mean(theirs_seconds)),
            "speed_ratio": float(np.mean(theirs_seconds) / np.mean(ours_seconds))}


def evaluation_runs(model: Path, corpus: Path, jobs: int, out: Path) -> dict:
    from bisep.evaluate import evaluate_separator
    from bisep.separator.api import Separator

    results = {}
    for oracles in (False, True):
        started = time.perf_counter()
        separator = Separator.from_pretrained(model, device="cpu")
        load_seconds = time.perf_counter() - started
        load_before = os.getloadavg()
        summary = evaluate_separator(separator, corpus / "compositions" / "test_2.csv",
                                     out / ("with-oracles" if oracles else "model-only"), jobs=jobs, oracles=oracles,
                                     progress=False)
        results["with_oracles" if oracles else "model_only"] = {
            **summary["timing"], "load_seconds": load_seconds, "load_average_before": load_before,
            "load_average_after": os.getloadavg(), "scored": summary["counts"]["scored"]}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--preset", default="configs/builtin/weak.yaml")
    parser.add_argument("--model", type=Path, help="A model folder (default: a random one of the preset's size).")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--agreement", type=int, default=20, help="Compositions for the mir_eval comparison.")
    parser.add_argument("--skip-runs", action="store_true", help="Only the mir_eval comparison.")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bisep-evaluate-benchmark"))
    args = parser.parse_args()

    from bisep.model_folder import read_model_folder

    model = args.model or random_model_folder(args.preset, args.out / "random-model")
    meta, _ = read_model_folder(model)
    report = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
              "model": str(model), "jobs": args.jobs}
    with threadpool_limits(1, user_api="blas"):
        report["metrics"] = agreement_and_speed(args.corpus, args.agreement, meta["config"]["n_fft"],
                                                meta["config"]["hop_length"])
    if not args.skip_runs:
        report["runs"] = evaluation_runs(model, args.corpus, args.jobs, args.out)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
