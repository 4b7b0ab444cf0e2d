"""``bisep benchmark``: the paper's claims, re-measured at CPU scale in one command.

It builds (or reuses) the built-in corpus, uses the shipped grounding model when the corpus is the one it was
trained on (else trains one), trains the four separators of the method's comparison with equal budgets (same
preset, steps, batch and crop length; only the training mode differs) plus the two loss ablations of the weak
method, for every seed, and scores all of them and the oracles on the test compositions. Every finished piece
is kept in the output folder, so a rerun resumes where a stopped one ended.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from bisep.errors import BisepError
from bisep.files import write_json_atomic, write_text_atomic

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "builtin"

# run name -> (preset, overrides): the four modes of the comparison and the weak method's loss ablations
RUNS = {
    "unsupervised": ("unsupervised.yaml", []),
    "weak": ("weak.yaml", []),
    "supervised": ("supervised.yaml", []),
    "semi": ("semi.yaml", []),
    "weak_no_contrastive": ("weak.yaml", ["loss.contrastive=0"]),
    "weak_no_consistency": ("weak.yaml", ["loss.consistency=0"]),
}
METRICS = ("sdr", "sdri", "si_sdri", "sir", "sar", "clap_score")


@dataclass
class BenchmarkPlan:
    out: Path
    size: str = "small"
    seeds: int = 2
    steps: int = 500
    validate_every: int = 250
    test_items: int | None = 300
    corpus: Path | None = None
    runs: tuple[str, ...] = tuple(RUNS)
    jobs: int = 2
    grounding: str | None = None
    overrides: list[str] = field(default_factory=list)
    benchmark_file: Path | None = None


def _log(message: str) -> None:
    print(f"[benchmark {time.strftime('%H:%M:%S')}] {message}", flush=True)


def prepare_corpus(plan: BenchmarkPlan) -> Path:
    from bisep.data.corpus import CorpusOptions, build_corpus
    from bisep.data.sources import RenderResources
    from bisep.data.sources.general_midi import default_soundfonts

    folder = plan.corpus or plan.out / f"corpus-{plan.size}"
    if (folder / "manifest.json").is_file():
        _log(f"corpus: reusing {folder}")
        return folder
    if plan.corpus is not None:
        raise BisepError(f"{folder}: no corpus there (manifest.json missing)")
    _log(f"corpus: building --size {plan.size} into {folder}")
    build_corpus(folder, CorpusOptions(size=plan.size, seed=0), RenderResources(default_soundfonts()),
                 jobs=max(1, plan.jobs), progress=False)
    return folder


# the corpus the shipped builtin grounding model was trained on (docs/models.md): `corpus build --size small --seed 0`
SHIPPED_GROUNDING_CORPUS = {"size": "small", "seed": 0, "sample_rate": 16000, "clip_seconds": 4.0}


def prepare_grounding(plan: BenchmarkPlan, corpus: Path) -> str:
    """``builtin`` when the corpus is the one the shipped model was trained on, else a model trained here on the
    corpus's grounding split (never on its test clips)."""
    if plan.grounding:
        _log(f"grounding: {plan.grounding} (as given)")
        return plan.grounding
    options = json.loads((corpus / "manifest.json").read_text()).get("options", {})
    if all(options.get(key) == value for key, value in SHIPPED_GROUNDING_CORPUS.items()):
        _log("grounding: the shipped builtin model (trained on this corpus's grounding split)")
        return "builtin"
    folder = plan.out / "grounding"
    if not (folder / "model.safetensors").is_file():
        from bisep.train.grounding import train_grounding

        _log(f"grounding: training a builtin-architecture model on {corpus} into {folder}")
        train_grounding(corpus, folder, log=_log)
    return str(folder)


def train_run(plan: BenchmarkPlan, name: str, seed: int, corpus: Path, grounding: str) -> tuple[Path, float, bool]:
    """Train one separator (or reuse a finished one); returns its best checkpoint, training minutes and whether
    it was reused."""
    from bisep.config import load_config
    from bisep.train.config import TrainConfig
    from bisep.train.trainer import Trainer

    preset, extra = RUNS[name]
    out = plan.out / "runs" / f"{name}-seed{seed}"
    done = out / "summary.json"
    if done.is_file() and (out / "checkpoints" / "best" / "model.safetensors").is_file():
        summary = json.loads(done.read_text())
        _log(f"{name} seed {seed}: reusing {out}")
        return out / "checkpoints" / "best", summary["seconds"] / 60, True
    epochs = max(1, plan.steps // plan.validate_every)
    overrides = [f"seed={seed}", f"out={out}", f"data.corpus={corpus}", f"grounding={grounding}",
                 f"epochs={epochs}", f"checkpoint_every_epochs={epochs + 1}", *extra, *plan.overrides]
    config = load_config(TrainConfig, CONFIGS / preset, overrides)
    batch = config.optim.batch_size * config.optim.accumulation
    config = replace(config, data=replace(config.data, items_per_epoch=plan.validate_every * batch))
    _log(f"{name} seed {seed}: training {epochs * plan.validate_every} steps ({preset} {' '.join(extra)})")
    summary = Trainer(config, log=lambda text: _log(f"{name} seed {seed}: {text}")).run()
    return out / "checkpoints" / "best", summary["seconds"] / 60, False


def evaluate_run(plan: BenchmarkPlan, checkpoint: Path, name: str, seed: int, corpus: Path, grounding: str,
                 compositions: str) -> dict:
    from bisep.evaluate.run import evaluate_separator
    from bisep.separator.api import Separator

    out = plan.out / "evaluation" / compositions / f"{name}-seed{seed}"
    results = out / "results.json"
    if results.is_file():
        return _cached_results(out)
    separator = Separator.from_pretrained(checkpoint, device="cpu", grounding=grounding)
    return evaluate_separator(separator, corpus / "compositions" / f"{compositions}.csv", out, grounding=grounding,
                              oracles=False, jobs=plan.jobs, limit=plan.test_items, progress=False)


def evaluate_references(plan: BenchmarkPlan, corpus: Path, grounding: str, compositions: str) -> dict:
    from bisep.config import load_config
    from bisep.evaluate.run import evaluate_oracles
    from bisep.train.config import TrainConfig

    out = plan.out / "evaluation" / compositions / "oracles"
    results = out / "results.json"
    if results.is_file():
        return _cached_results(out)
    model = load_config(TrainConfig, CONFIGS / "weak.yaml", []).model
    return evaluate_oracles(corpus / "compositions" / f"{compositions}.csv", out, n_fft=model.n_fft,
                            hop_length=model.hop_length, grounding=grounding, jobs=plan.jobs,
                            limit=plan.test_items, progress=False)


def _cached_results(out: Path) -> dict:
    """A finished evaluation's results, with its timing (kept beside them) for the benchmark's time figures."""
    results = json.loads((out / "results.json").read_text())
    if (out / "timing.json").is_file():
        results["timing"] = json.loads((out / "timing.json").read_text())
    return results


def _overall(results: dict, method: str, metric: str) -> float | None:
    entry = results.get("summary", {}).get(method, {}).get("overall", {}).get(metric)
    return None if entry is None else float(entry["mean"])


def run_benchmark(plan: BenchmarkPlan) -> dict:
    started = time.perf_counter()
    unknown = [name for name in plan.runs if name not in RUNS]
    if unknown:
        raise BisepError(f"unknown run(s) {', '.join(unknown)} (known: {', '.join(RUNS)})")
    if plan.seeds < 1 or plan.steps < 1:
        raise BisepError("seeds and steps must be at least 1")
    plan.out.mkdir(parents=True, exist_ok=True)
    corpus = prepare_corpus(plan)
    grounding = prepare_grounding(plan, corpus)
    table: dict = {"runs": {}, "references": {}, "minutes": {}, "evaluation_minutes": 0.0, "reused_runs": []}
    for compositions in ("test_2", "test_3"):
        results = evaluate_references(plan, corpus, grounding, compositions)
        table["evaluation_minutes"] += results.get("timing", {}).get("seconds", 0.0) / 60
        table["references"][compositions] = {
            method: {metric: _overall(results, method, metric) for metric in METRICS}
            for method in ("mixture", "irm", "ibm", "reference") if method in results.get("summary", {})}
    for seed in range(plan.seeds):
        for name in plan.runs:
            checkpoint, minutes, reused = train_run(plan, name, seed, corpus, grounding)
            table["minutes"][f"{name}-seed{seed}"] = minutes
            if reused:
                table["reused_runs"].append(f"{name}-seed{seed}")
            for compositions in ("test_2", "test_3"):
                results = evaluate_run(plan, checkpoint, name, seed, corpus, grounding, compositions)
                table["evaluation_minutes"] += results.get("timing", {}).get("seconds", 0.0) / 60
                scores = {metric: _overall(results, "model", metric) for metric in METRICS}
                table["runs"].setdefault(name, {}).setdefault(compositions, []).append(scores)
                _log(f"{name} seed {seed} {compositions}: SDR {scores['sdr']:.2f} dB, SDRi {scores['sdri']:.2f} dB")
    table["wall_minutes"] = (time.perf_counter() - started) / 60
    table["plan"] = {"size": plan.size, "seeds": plan.seeds, "steps": plan.steps, "test_items": plan.test_items,
                     "runs": list(plan.runs), "overrides": plan.overrides, "corpus": str(corpus),
                     "grounding": grounding}
    write_json_atomic(plan.out / "benchmark.json", table)
    section = render_section(table)
    write_text_atomic(plan.out / "benchmark.md", section)
    if plan.benchmark_file is not None:
        insert_section(plan.benchmark_file, section)
    return table


def _mean(rows: list[dict], metric: str) -> float:
    values = [row[metric] for row in rows if row.get(metric) is not None]
    return float(np.mean(values)) if values else float("nan")


def _spread(rows: list[dict], metric: str) -> str:
    values = [row[metric] for row in rows if row.get(metric) is not None]
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}" if len(values) > 1 else f"{np.mean(values):.2f}"


def relative_figures(table: dict, compositions: str = "test_2") -> dict[str, float]:
    """The paper's relative claims from the mean SDR over seeds."""
    runs = table["runs"]

    def sdr(name):
        return _mean(runs[name][compositions], "sdr") if name in runs else float("nan")

    return {"weak_over_unsupervised": sdr("weak") / sdr("unsupervised"),
            "weak_share_of_supervised": sdr("weak") / sdr("supervised"),
            "semi_over_supervised": sdr("semi") / sdr("supervised"),
            "weak_minus_no_contrastive": sdr("weak") - sdr("weak_no_contrastive"),
            "weak_minus_no_consistency": sdr("weak") - sdr("weak_no_consistency")}


def render_section(table: dict) -> str:
    plan = table["plan"]
    reused = table.get("reused_runs", [])
    lines = [f"## Benchmark: the four training modes and the loss ablations ({time.strftime('%Y-%m-%d')})", "",
             f"Command: `bisep benchmark --size {plan['size']} --seeds {plan['seeds']} --steps {plan['steps']}"
             + (f" --test-items {plan['test_items']}" if plan["test_items"] else "")
             + (f" --runs {','.join(plan['runs'])}" if list(plan.get("runs", RUNS)) != list(RUNS) else "") + "`  ",
             f"Machine: {platform.machine()}, {_cpu_count()} cores, Python {platform.python_version()}; "
             f"wall time {table['wall_minutes']:.1f} min (training {sum(table['minutes'].values()):.1f} + "
             f"evaluation {table.get('evaluation_minutes', 0.0):.1f} min summed over all runs"
             + (f", including {len(reused)} run(s) reused from an earlier invocation: {', '.join(reused)}"
                if reused else "") + f"); seeds 0..{plan['seeds'] - 1}; "
             f"grounding `{plan['grounding']}`; every run {plan['steps']} optimiser steps of the "
             f"`configs/builtin/` preset (same model, batch, crops).", ""]
    for compositions in ("test_2", "test_3"):
        count = plan["test_items"] or "all"
        lines += [f"### {compositions} ({count} compositions; mean over seeds ± std across seeds)", "",
                  "| model | SDR | SDRi | SI-SDRi | SIR | SAR | CLAPScore | train min |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, per in table["runs"].items():
            rows = per.get(compositions, [])
            minutes = np.mean([m for key, m in table["minutes"].items() if key.startswith(f"{name}-seed")])
            lines.append(f"| {name} | " + " | ".join(_spread(rows, metric) for metric in METRICS)
                         + f" | {minutes:.1f} |")
        for method, scores in table["references"].get(compositions, {}).items():
            lines.append(f"| {method} (reference) | " + " | ".join(
                "" if scores.get(metric) is None else f"{scores[metric]:.2f}" for metric in METRICS) + " | |")
        lines.append("")
    figures = relative_figures(table)
    claims = [("weak_over_unsupervised", "weak / unsupervised SDR: {:.2f} x (target >= 1.3) [1.71 x]", 1),
              ("weak_share_of_supervised", "weak as a share of supervised SDR: {:.1f} % (target >= 90 %) [97.5 %]",
               100),
              ("semi_over_supervised", "semi / supervised SDR: {:.2f} x (target > 1) [1.17 x]", 1),
              ("weak_minus_no_contrastive", "weak minus weak without the contrastive term: {:+.2f} dB (target > 0)",
               1),
              ("weak_minus_no_consistency", "weak minus weak without the consistency term: {:+.2f} dB (target > 0)",
               1)]
    measured = [f"- {text.format(scale * figures[key])}" for key, text, scale in claims if np.isfinite(figures[key])]
    lines += ["Relative figures on test_2 (mean SDR; the paper's figures in brackets):", "", *measured, ""] \
        if measured else ["No relative figures: each needs both of its runs, and this invocation ran "
                          f"{', '.join(table['runs'])}.", ""]
    return "\n".join(lines) + "\n"


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def insert_section(path: Path, section: str) -> None:
    """Put ``section`` first among the ``## `` sections of ``path`` (newest first)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "# bisep benchmarks\n\n"
    head, marker, rest = text.partition("\n## ")
    updated = f"{head.rstrip()}\n\n{section}\n" + (f"## {rest}" if marker else "")
    write_text_atomic(path, updated)
