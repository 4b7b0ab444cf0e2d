"""``bisep benchmark``: the paper's claims, re-measured at CPU scale in one command.

It builds (or reuses) the built-in corpus, uses the shipped grounding model when the corpus is the one it was
trained on (else trains one), trains the four separators of the method's comparison with equal budgets plus
the two loss ablations of the weak method, for every seed, and scores all of them and the oracles on the test
compositions. Every finished piece is kept in the output folder, so a rerun resumes where a stopped one ended.

Equal budgets mean equal training examples seen: every run takes the same optimiser steps of the same preset
(model, crops, learning rate), and each mode's batch is sized so that a step trains the same number of
(mixture, prompt) estimates. A weak item trains six estimates (two clips, each by its caption and two phrases)
and a supervised item two, so at one batch size for all, supervised saw a third of weak's examples and was
starved (issue 22). The validation curves of every run are kept, so a reader sees whether the supervised
reference plateaued; ratios against supervised are printed only when it is a healthy reference.
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


@dataclass(frozen=True)
class Budget:
    """How long each run trains and how many seeds each comparison gets. ``separations_per_step``: the
    (mixture, prompt) estimates every run's optimiser step trains (the weak preset's batch of 8 trains 48)."""

    steps: int
    validate_every: int
    seeds: int
    ablation_seeds: int
    validation_items: int
    test_items: int | None = 300  # compositions scored per test list (None: all)
    separations_per_step: int = 48


# Sized by benchmarks/benchmark_step_cost.py (2026-12-07, quiet 2 cores: every mode 1.3-1.4 s a step at 48 estimates,
# 23-29 s a validation of 200 items) and the first default run (2026-12-07: 300 steps, 4 validations, 300 test
# items took 105.6 min: 79.4 training, 17.1 evaluation, ~9 corpus and oracles). default: 10 runs (the ablations one
# seed) of 250 steps, validated at 0, 125 and 250, scored on 200 compositions per test list: predicted ~63 min of
# training, ~11 of evaluation, ~6 of corpus and oracles, about 80 min. The supervised reference still gains at
# that length (it gained +1.3 dB over steps 200-300 there), which the default's curves table shows; the long
# budget (12 runs of 1,500 steps, about 7.5 hours) is the one that lets it level off.
BUDGETS = {"default": Budget(steps=250, validate_every=125, seeds=2, ablation_seeds=1, validation_items=100,
                             test_items=200),
           "long": Budget(steps=1500, validate_every=250, seeds=2, ablation_seeds=2, validation_items=200,
                          test_items=300)}
ABLATIONS = ("weak_no_contrastive", "weak_no_consistency")


@dataclass
class BenchmarkPlan:
    out: Path
    size: str = "small"
    seeds: int = 2
    steps: int = 300
    validate_every: int = 100
    ablation_seeds: int | None = None
    validation_items: int | None = None
    separations_per_step: int | None = 48
    test_items: int | None = 300
    corpus: Path | None = None
    runs: tuple[str, ...] = tuple(RUNS)
    jobs: int = 2
    grounding: str | None = None
    overrides: list[str] = field(default_factory=list)
    benchmark_file: Path | None = None
    figures: Path | None = None
    budget: str = "custom"

    @classmethod
    def from_budget(cls, name: str, out: Path, **fields) -> "BenchmarkPlan":
        """A plan with the steps, validation interval, seeds and batch sizing of budget ``name``."""
        if name not in BUDGETS:
            raise BisepError(f"unknown budget '{name}' (known: {', '.join(BUDGETS)})")
        budget = BUDGETS[name]
        fields.setdefault("test_items", budget.test_items)
        return cls(out=out, steps=budget.steps, validate_every=budget.validate_every, seeds=budget.seeds,
                   ablation_seeds=budget.ablation_seeds, validation_items=budget.validation_items,
                   separations_per_step=budget.separations_per_step, budget=name, **fields)

    def seeds_of(self, name: str) -> int:
        if name in ABLATIONS and self.ablation_seeds is not None:
            return min(self.seeds, self.ablation_seeds)
        return self.seeds


def _log(message: str) -> None:
    print(f"[benchmark {time.strftime('%H:%M:%S')}] {message}", flush=True)


def prepare_corpus(plan: BenchmarkPlan) -> Path:
    from bisep.data.corpus import CorpusOptions, build_corpus
    from bisep.data.sources import RenderResources
    from bisep.data.sources.general_midi import default_soundfonts
    from bisep.data.sources.field_recordings import discover_recordings
    from bisep.data.sources.sample_banks import discover_banks

    folder = plan.corpus or plan.out / f"corpus-{plan.size}"
    if (folder / "manifest.json").is_file():
        _log(f"corpus: reusing {folder}")
        return folder
    if plan.corpus is not None:
        raise BisepError(f"{folder}: no corpus there (manifest.json missing)")
    _log(f"corpus: building --size {plan.size} into {folder}")
    # the recorded banks setup installed, as `bisep corpus build` uses them; field recordings only when the shipped
    # grounding model heard them (else the benchmark stays in the world that model knows)
    world = shipped_grounding_world()
    recordings = discover_recordings() if world is None or world["field_recordings"] else {}
    resources = RenderResources(default_soundfonts(), discover_banks(), recordings)
    build_corpus(folder, CorpusOptions(size=plan.size, seed=0), resources, jobs=max(1, plan.jobs), progress=False)
    return folder


def shipped_grounding_world() -> dict | None:
    """The world (:func:`bisep.data.corpus.corpus_world`) the shipped grounding model was trained on, from its
    provenance; None when it does not say."""
    from bisep.pretrained import asset_folder

    config = json.loads((asset_folder("grounding", "builtin") / "config.json").read_text())
    return config.get("provenance", {}).get("world")


def prepare_grounding(plan: BenchmarkPlan, corpus: Path) -> str:
    """``builtin`` when the corpus is the one the shipped model was trained on, else a model trained here on the
    corpus's grounding split (never on its test clips)."""
    if plan.grounding:
        _log(f"grounding: {plan.grounding} (as given)")
        return plan.grounding
    from bisep.data.corpus import corpus_world

    manifest = json.loads((corpus / "manifest.json").read_text())
    shipped = shipped_grounding_world()
    if shipped is not None and corpus_world(manifest) == shipped:
        _log("grounding: the shipped builtin model (trained on this corpus's grounding split)")
        return "builtin"
    folder = plan.out / "grounding"
    if not (folder / "model.safetensors").is_file():
        from bisep.train.grounding import train_grounding

        _log(f"grounding: training a builtin-architecture model on {corpus} into {folder}")
        train_grounding(corpus, folder, log=_log)
    return str(folder)


def run_config(plan: BenchmarkPlan, name: str, seed: int, corpus: Path, grounding: str):
    """The :class:`~bisep.train.config.TrainConfig` of run ``name`` and ``seed``: its preset, the plan's steps
    and overrides, and the batch that buys the plan's estimates per step."""
    from bisep.config import load_config
    from bisep.train.config import TrainConfig

    preset, extra = RUNS[name]
    out = plan.out / "runs" / f"{name}-seed{seed}"
    epochs = max(1, plan.steps // plan.validate_every)
    overrides = [f"seed={seed}", f"out={out}", f"data.corpus={corpus}", f"grounding={grounding}",
                 f"epochs={epochs}", f"checkpoint_every_epochs={epochs + 1}", *extra]
    if plan.validation_items:
        overrides.append(f"data.validation_items={plan.validation_items}")
    overrides += plan.overrides
    config = load_config(TrainConfig, CONFIGS / preset, overrides)
    if plan.separations_per_step:
        config = replace(config, optim=replace(config.optim, batch_size=batch_for(config, plan.separations_per_step)))
    batch = config.optim.batch_size * config.optim.accumulation
    return replace(config, data=replace(config.data, items_per_epoch=plan.validate_every * batch))


def train_run(plan: BenchmarkPlan, name: str, seed: int, config) -> tuple[Path, float, bool]:
    """Train one separator of ``config`` (:func:`run_config`), or reuse a finished one; returns its best
    checkpoint, training minutes and whether it was reused."""
    from bisep.train.trainer import Trainer

    out = Path(config.out)
    done = out / "summary.json"
    if done.is_file() and (out / "checkpoints" / "best" / "model.safetensors").is_file():
        summary = json.loads(done.read_text())
        _log(f"{name} seed {seed}: reusing {out}")
        return out / "checkpoints" / "best", summary["seconds"] / 60, True
    steps = config.epochs * plan.validate_every
    _log(f"{name} seed {seed}: training {steps} steps of batch {config.optim.batch_size} "
         f"({RUNS[name][0]} {' '.join(RUNS[name][1])})")
    summary = Trainer(config, log=lambda text: _log(f"{name} seed {seed}: {text}")).run()
    return out / "checkpoints" / "best", summary["seconds"] / 60, False


def batch_for(config, separations_per_step: int) -> int:
    """The micro-batch that makes one optimiser step of ``config`` train ``separations_per_step`` estimates."""
    from bisep.train.objectives import separations_per_item

    data = config.data
    per_item = separations_per_item(config.mode, data.clips_per_mixture, data.phrases_per_clip,
                                    data.sources_per_supervised_mixture)
    return max(1, round(separations_per_step / (per_item * config.optim.accumulation)))


def validation_curve(run_folder: Path) -> list[dict]:
    """``[{step, sdri, si_sdri}]`` from a run's history, in step order."""
    history = run_folder / "history.jsonl"
    if not history.is_file():
        return []
    points = []
    for line in history.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "validation_sdri" in record:
            points.append({"step": record["step"], "sdri": record["validation_sdri"],
                           "si_sdri": record["validation_si_sdri"]})
    return points


def plateau_gain(points: list[dict]) -> float | None:
    """SDRi gained over the last quarter of a run's validations (at least the last interval): small when the
    run has plateaued."""
    if len(points) < 2:
        return None
    last = points[-1]
    earlier = [p for p in points if p["step"] <= 0.75 * last["step"]] or points[:-1]
    return last["sdri"] - earlier[-1]["sdri"]


def plot_curves(curves: dict[str, list[dict]], out: Path) -> Path | None:
    """Validation SDRi and SI-SDRi against optimiser steps, one colour per mode (seeds share it); None when no
    run has two validations."""
    if not any(len(points) > 1 for points in curves.values()):
        return None
    from matplotlib.figure import Figure

    from bisep.files import atomic_path
    from bisep.plots import DRAWING

    with DRAWING:
        figure = Figure(figsize=(9, 3.6), dpi=110)
        axes = figure.subplots(1, 2)
        colours = {}
        for key, points in curves.items():
            mode = key.rsplit("-seed", 1)[0]
            colour = colours.setdefault(mode, f"C{len(colours)}")
            for axis, metric in zip(axes, ("sdri", "si_sdri")):
                axis.plot([p["step"] for p in points], [p[metric] for p in points], "o-", color=colour,
                          markersize=3, linewidth=1.0, label=mode if key.endswith("-seed0") else None)
        for axis, title in zip(axes, ("validation SDRi (dB)", "validation SI-SDRi (dB)")):
            axis.axhline(0.0, color="grey", linewidth=0.8, linestyle="--")
            axis.set_xlabel("optimiser step (equal estimates per step)")
            axis.set_title(title, fontsize=9)
            axis.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        figure.tight_layout()
        with atomic_path(out) as temporary:
            figure.savefig(temporary, format="png")
    return out


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
    if plan.seeds < 1 or plan.steps < 1 or plan.validate_every < 1:
        raise BisepError("seeds, steps and the validation interval must be at least 1")
    plan.out.mkdir(parents=True, exist_ok=True)
    corpus = prepare_corpus(plan)
    grounding = prepare_grounding(plan, corpus)
    table: dict = {"runs": {}, "references": {}, "minutes": {}, "evaluation_minutes": 0.0, "reused_runs": [],
                   "curves": {}, "batch": {}}
    for compositions in ("test_2", "test_3"):
        results = evaluate_references(plan, corpus, grounding, compositions)
        table["evaluation_minutes"] += results.get("timing", {}).get("seconds", 0.0) / 60
        table["references"][compositions] = {
            method: {metric: _overall(results, method, metric) for metric in METRICS}
            for method in ("mixture", "irm", "ibm", "reference") if method in results.get("summary", {})}
    for seed in range(plan.seeds):
        for name in plan.runs:
            if seed >= plan.seeds_of(name):
                continue
            config = run_config(plan, name, seed, corpus, grounding)
            checkpoint, minutes, reused = train_run(plan, name, seed, config)
            table["minutes"][f"{name}-seed{seed}"] = minutes
            table["curves"][f"{name}-seed{seed}"] = validation_curve(Path(config.out))
            table["batch"][name] = config.optim.batch_size
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
                     "grounding": grounding, "budget": plan.budget, "validate_every": plan.validate_every,
                     "ablation_seeds": plan.ablation_seeds, "separations_per_step": plan.separations_per_step}
    write_json_atomic(plan.out / "benchmark.json", table)
    figure = plot_curves(table["curves"], plan.out / "curves.png")
    if figure is not None and plan.figures is not None:
        plan.figures.mkdir(parents=True, exist_ok=True)
        plot_curves(table["curves"], plan.figures / f"benchmark_{plan.budget}_curves.png")
        write_json_atomic(plan.figures / f"benchmark_{plan.budget}_curves.json", table["curves"])
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
             f"Command: `bisep benchmark --budget {plan.get('budget', 'custom')} --size {plan['size']} --seeds "
             f"{plan['seeds']} --steps {plan['steps']} --validate-every {plan.get('validate_every', plan['steps'])}"
             + (f" --ablation-seeds {plan['ablation_seeds']}" if plan.get("ablation_seeds") is not None else "")
             + (f" --test-items {plan['test_items']}" if plan["test_items"] else "")
             + (f" --runs {','.join(plan['runs'])}" if list(plan.get("runs", RUNS)) != list(RUNS) else "") + "`  ",
             f"Machine: {platform.machine()}, {_cpu_count()} cores, Python {platform.python_version()}; "
             f"wall time {table['wall_minutes']:.1f} min (training {sum(table['minutes'].values()):.1f} + "
             f"evaluation {table.get('evaluation_minutes', 0.0):.1f} min summed over all runs"
             + (f", including {len(reused)} run(s) reused from an earlier invocation: {', '.join(reused)}"
                if reused else "") + f"); seeds 0..{plan['seeds'] - 1}; "
             f"grounding `{plan['grounding']}`; {_budget_sentence(table)}", ""]
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
    lines += _curve_lines(table)
    figures = relative_figures(table)
    healthy, verdict = supervised_health(table)
    if not healthy:
        figures = {key: value for key, value in figures.items()
                   if key not in ("weak_share_of_supervised", "semi_over_supervised")}
    claims = [("weak_over_unsupervised", "weak / unsupervised SDR: {:.2f} x (target >= 1.3) [1.71 x]", 1),
              ("weak_share_of_supervised", "weak as a share of supervised SDR: {:.1f} % (target >= 90 %) [97.5 %]",
               100),
              ("semi_over_supervised", "semi / supervised SDR: {:.2f} x (target > 1) [1.17 x]", 1),
              ("weak_minus_no_contrastive", "weak minus weak without the contrastive term: {:+.2f} dB (target > 0)",
               1),
              ("weak_minus_no_consistency", "weak minus weak without the consistency term: {:+.2f} dB (target > 0)",
               1)]
    measured = [f"- {text.format(scale * figures[key])}" for key, text, scale in claims
                if np.isfinite(figures.get(key, float("nan")))]
    lines += [verdict, ""] if verdict else []
    lines += ["Relative figures on test_2 (mean SDR; the paper's figures in brackets):", "", *measured, ""] \
        if measured else ["No relative figures: each needs both of its runs, and this invocation ran "
                          f"{', '.join(table['runs'])}.", ""]
    return "\n".join(lines) + "\n"


def supervised_health(table: dict, compositions: str = "test_2") -> tuple[bool, str]:
    """Whether supervised is a reference worth dividing by: its SI-SDRi above 0 and its SDR at least
    unsupervised's (mean over seeds). Returns the verdict and the sentence the table prints."""
    runs = table["runs"]
    if "supervised" not in runs:
        return False, ""
    si_sdri = _mean(runs["supervised"][compositions], "si_sdri")
    sdr = _mean(runs["supervised"][compositions], "sdr")
    floor = _mean(runs["unsupervised"][compositions], "sdr") if "unsupervised" in runs else float("-inf")
    if si_sdri > 0 and sdr >= floor:
        return True, (f"Supervised is a healthy reference on {compositions} (SI-SDRi {si_sdri:+.2f} dB > 0, SDR "
                      f"{sdr:.2f} dB >= unsupervised's)." if np.isfinite(floor) else "")
    return False, (f"**Supervised is not a healthy reference on {compositions}** (SI-SDRi {si_sdri:+.2f} dB, SDR "
                   f"{sdr:.2f} dB against unsupervised's {floor:.2f} dB; it needs SI-SDRi > 0 and SDR >= "
                   "unsupervised's): no ratio against it is printed.")


def _budget_sentence(table: dict) -> str:
    plan = table["plan"]
    ablation = plan.get("ablation_seeds")
    seeds = f"; the ablations {ablation} seed(s)" if ablation is not None and ablation < plan["seeds"] else ""
    batches = ", ".join(f"{name} {batch}" for name, batch in table.get("batch", {}).items())
    per_step = plan.get("separations_per_step")
    sizing = (f"each mode's batch trains {per_step} (mixture, prompt) estimates a step (batch: {batches})"
              if per_step else f"one batch for all modes ({batches})")
    return (f"budget `{plan.get('budget', 'custom')}`: every run {plan['steps']} optimiser steps of its "
            f"`configs/builtin/` preset (same model, crops, learning rate), validated every "
            f"{plan.get('validate_every', plan['steps'])} steps; {sizing}{seeds}.")


def _curve_lines(table: dict) -> list[str]:
    """Validation SDRi at each validation, and whether the last quarter of the run still gained."""
    curves = table.get("curves", {})
    if not curves:
        return []
    steps = sorted({point["step"] for points in curves.values() for point in points})
    lines = ["Validation SDRi by step (dB; `valid_2`, as the trainer validates; the curves in `curves.png`):", "",
             "| run | " + " | ".join(str(step) for step in steps) + " | gain over the last quarter |",
             "| --- |" + " --- |" * (len(steps) + 1)]
    for key, points in curves.items():
        by_step = {point["step"]: point["sdri"] for point in points}
        gain = plateau_gain(points)
        lines.append(f"| {key} | " + " | ".join(f"{by_step[s]:+.2f}" if s in by_step else "" for s in steps)
                     + f" | {'' if gain is None else f'{gain:+.2f}'} |")
    return [*lines, ""]


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def insert_section(path: Path, section: str) -> None:
    """Put ``section`` first among the ``## `` sections of ``path`` (newest first)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "# bisep benchmarks\n\n"
    head, marker, rest = text.partition("\n## ")
    updated = f"{head.rstrip()}\n\n{section}\n" + (f"## {rest}" if marker else "")
    write_text_atomic(path, updated)
