"""The report of an evaluation: ``results.json`` (protocol, counts, summaries, every composition's scores),
``scores.csv`` (one row per source and method), ``summary.md``, the plots and the best and worst examples.

Everything but ``timing.json`` is a function of the inputs and of the network's thread count: a rerun with the
same settings writes the same bytes.
"""

from __future__ import annotations

import csv
import io
import shutil
from importlib.metadata import version
from pathlib import Path

import numpy as np

from bisep.evaluate import plots
from bisep.evaluate.clap_score import REFERENCE
from bisep.evaluate.examples import write_examples
from bisep.evaluate.metrics import DB_LIMIT, FILTER_LENGTH, MIXTURE
from bisep.evaluate.oracles import ORACLES
from bisep.evaluate.statistics import describe
from bisep.files import write_json_atomic, write_text_atomic

RESULTS_FORMAT = "bisep-evaluation/1"
METRICS = ("sdr", "sir", "sar", "sdri", "si_sdr", "si_sdri", "clap_score")
TITLES = {"sdr": "SDR", "sir": "SIR", "sar": "SAR", "sdri": "SDRi", "si_sdr": "SI-SDR", "si_sdri": "SI-SDRi",
          "clap_score": "CLAPScore"}


def protocol() -> dict:
    return {
        "mixture": "mean of the k clips; each reference is its clip divided by k (as it sits in the mixture)",
        "bss_eval": f"bss_eval_sources (SDR, SIR, SAR), {FILTER_LENGTH}-tap distortion filter, no permutation, "
                    "all references of the composition span the interference",
        "metric_library": f"fast_bss_eval {version('fast_bss_eval')} (numpy backend, float64)",
        "si_sdr": "scale-invariant SDR, zero-mean (Le Roux et al. 2019)",
        "improvements": "SDRi = SDR - SDR of the unprocessed mixture for the same reference; likewise SI-SDRi",
        "limits_db": [-DB_LIMIT, DB_LIMIT],
        "silent_reference": "a clip with peak below -80 dBFS: its composition is skipped and counted",
        "silent_estimate": "an estimate with L2 norm below 1e-6 scores -100 dB on SDR, SIR, SAR and SI-SDR "
                           "and is counted",
        "clap_score": "cosine similarity of the estimate's audio embedding and its prompt's text embedding",
        "ci95": "Student's t interval of the mean; unit: the composition (overall), the source (per class)",
    }


def method_order(records: list[dict]) -> list[str]:
    """The separator's methods first, then the mixture, the oracles and the clean references."""
    present: dict[str, None] = {}
    for record in records:
        present.update(dict.fromkeys(record.get("scores", {})))
    fixed = {MIXTURE, REFERENCE, *ORACLES}
    return ([m for m in present if m not in fixed] + [m for m in (MIXTURE, *ORACLES, REFERENCE) if m in present])


def primary_method(methods: list[str]) -> str | None:
    """The method the examples and the plots are about: the separator's, else the first oracle."""
    return next((m for m in methods if m not in (MIXTURE, REFERENCE)), None)


def summarize(records: list[dict], methods: list[str]) -> dict:
    summary = {}
    scored = [r for r in records if "scores" in r]
    for method in methods:
        overall, per_class = {}, {}
        for metric in METRICS:
            values, units, classes = [], [], []
            for record in scored:
                for slot, value in enumerate(record["scores"].get(method, {}).get(metric, [])):
                    values.append(value)
                    units.append(record["id"])
                    classes.append(record["classes"][slot])
            if not values:
                continue
            overall[metric] = describe(values, units)
            by_class: dict[str, list[float]] = {}
            for value, name in zip(values, classes):
                if name is not None:
                    by_class.setdefault(name, []).append(value)
            for name in sorted(by_class):
                per_class.setdefault(name, {})[metric] = describe(by_class[name])
        summary[method] = {"overall": overall, "per_class": per_class}
    return summary


def build_results(compositions, records: list[dict], description: dict, grounding) -> dict:
    methods = method_order(records)
    scored = [r for r in records if "scores" in r]
    silent_estimates = {m: sum(r["silent_estimates"].get(m, 0) for r in scored) for m in methods
                        if any(m in r["silent_estimates"] for r in scored)}
    return {
        "format": RESULTS_FORMAT,
        "compositions": {"file": str(compositions.path), "name": compositions.name,
                         "dataset": str(compositions.dataset.root), "sample_rate": compositions.sample_rate,
                         "listed": len(compositions.compositions)},
        **description,
        "clap_score_grounding": getattr(grounding, "name", None),
        "protocol": protocol(),
        "methods": methods,
        "counts": {"compositions": len(records), "scored": len(scored),
                   "skipped_silent_reference": len(records) - len(scored),
                   "sources_scored": sum(len(r["clips"]) for r in scored), "silent_estimates": silent_estimates},
        "summary": summarize(records, methods),
        "records": [_rounded(r) for r in records],
    }


def _rounded(value):
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


def write_report(out_dir: str | Path, results: dict, timing: dict, compositions, estimators, examples: int) -> dict:
    """Write every file of the report into ``out_dir``; returns ``{kind: path}``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict = {}
    primary = primary_method(results["methods"])
    shutil.rmtree(out / "examples", ignore_errors=True)
    if primary and examples > 0:
        results["examples"] = write_examples(out / "examples", results, primary, compositions, estimators, examples)
    if primary and results["counts"]["scored"]:
        bars = plots.per_class_bars(out / "per_class_sdri.png", results["summary"], primary)
        if bars:
            files["per_class_plot"] = str(bars)
        methods = [m for m in results["methods"] if m not in (MIXTURE, REFERENCE)]
        values = {m: [v for r in results["records"] if "scores" in r for v in r["scores"][m]["sdri"]] for m in methods}
        files["histogram"] = str(plots.histogram(out / "sdri_histogram.png", values))
    write_json_atomic(out / "results.json", results)
    files["results"] = str(out / "results.json")
    write_text_atomic(out / "scores.csv", scores_csv(results))
    files["scores"] = str(out / "scores.csv")
    write_text_atomic(out / "summary.md", markdown(results, files, out))
    files["summary"] = str(out / "summary.md")
    write_json_atomic(out / "timing.json", timing)
    files["timing"] = str(out / "timing.json")
    if results.get("examples"):
        files["examples"] = str(out / "examples")
    return files


def scores_csv(results: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["composition", "slot", "clip", "class", "prompt", "method", *METRICS])
    for record in results["records"]:
        for method in results["methods"]:
            scores = record.get("scores", {}).get(method)
            if scores is None:
                continue
            for slot, clip in enumerate(record["clips"]):
                writer.writerow([record["id"], slot + 1, clip, record["classes"][slot] or "", record["prompts"][slot],
                                 method, *[_cell(scores.get(metric), slot) for metric in METRICS]])
    return buffer.getvalue()


def _cell(values: list[float] | None, slot: int) -> str:
    return "" if values is None else f"{values[slot]:.4f}"


def _figure(stats: dict | None, digits: int = 2) -> str:
    if not stats or stats["mean"] is None:
        return ""
    text = f"{stats['mean']:.{digits}f}"
    if stats["ci95"]:
        text += f" ± {(stats['ci95'][1] - stats['ci95'][0]) / 2:.{digits}f}"
    return text


def markdown(results: dict, files: dict, out: Path) -> str:
    counts, summary, methods = results["counts"], results["summary"], results["methods"]
    separator = results.get("separator")
    title = separator["checkpoint"] if separator else "reference points"
    lines = [f"# Evaluation of {title} on {results['compositions']['name']}", ""]
    lines.append(f"Compositions: `{results['compositions']['file']}`: {counts['compositions']} evaluated, "
                 f"{counts['scored']} scored ({counts['sources_scored']} sources), "
                 f"{counts['skipped_silent_reference']} skipped for a silent reference.")
    if separator:
        lines.append(f"Separator STFT: n_fft {separator['n_fft']}, hop {separator['hop_length']} at "
                     f"{separator['sample_rate']} Hz (the oracles use the same); grounding {separator['grounding']}.")
    lines.append(f"Metrics: {results['protocol']['bss_eval']}; {results['protocol']['metric_library']}. "
                 f"CLAPScore by the grounding model `{results['clap_score_grounding']}`.")
    silent = {m: n for m, n in counts["silent_estimates"].items() if n}
    if silent:
        lines.append("Silent estimates (scored -100 dB): " + ", ".join(f"{m} {n}" for m, n in silent.items()) + ".")
    lines += ["", "## Overall (mean ± half-width of the 95% interval, dB; CLAPScore is a cosine)", ""]
    lines += _table(["method", *[TITLES[m] for m in METRICS]],
                    [[method, *[_figure(summary[method]["overall"].get(metric), 3 if metric == "clap_score" else 2)
                                for metric in METRICS]] for method in methods])
    lines += ["", "## Overall medians", ""]
    lines += _table(["method", *[TITLES[m] for m in METRICS]],
                    [[method, *[_median(summary[method]["overall"].get(metric)) for metric in METRICS]]
                     for method in methods])
    primary = primary_method(methods)
    if primary and summary[primary]["per_class"]:
        extra = [m for m in ORACLES if m in summary]
        lines += ["", f"## Per class ({primary}; oracle SDRi beside it)", ""]
        header = ["class", "sources", "SDR", "SDRi", "SI-SDRi", "CLAPScore", *[f"{m} SDRi" for m in extra]]
        rows = []
        for name, stats in summary[primary]["per_class"].items():
            rows.append([name, str(stats["sdri"]["count"]), _figure(stats.get("sdr")), _figure(stats.get("sdri")),
                         _figure(stats.get("si_sdri")), _figure(stats.get("clap_score"), 3),
                         *[_figure(summary[m]["per_class"].get(name, {}).get("sdri")) for m in extra]])
        lines += _table(header, rows)
    figures = [(key, Path(files[key]).relative_to(out)) for key in ("per_class_plot", "histogram") if key in files]
    if figures:
        lines += ["", "## Figures", ""] + [f"![{key}]({path})" for key, path in figures]
    if results.get("examples"):
        lines += ["", f"## Examples (by the mean SDRi of {primary})", ""]
        lines += _table(["", "composition", "prompts", "SDRi", "folder"],
                        [[e["rank"], e["id"], " / ".join(e["prompts"]), f"{e['sdri']:.2f}", f"[{e['folder']}]({e['folder']})"]
                         for e in results["examples"]])
    return "\n".join(lines) + "\n"


def _median(stats: dict | None) -> str:
    return "" if not stats or stats["median"] is None else f"{stats['median']:.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells):
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return [line(header), line(["---"] * len(header)), *[line(row) for row in rows]]


def summary_lines(result: dict) -> list[str]:
    """A few lines for the terminal: counts, then each method's mean SDR, SDRi, SI-SDRi and CLAPScore."""
    counts = result["counts"]
    lines = [f"{counts['scored']} of {counts['compositions']} compositions scored "
             f"({counts['skipped_silent_reference']} skipped: silent reference)"]
    for method in result["methods"]:
        overall = result["summary"][method]["overall"]
        parts = [f"{TITLES[m]} {_figure(overall[m], 3 if m == 'clap_score' else 2)}"
                 for m in ("sdr", "sdri", "si_sdri", "clap_score") if m in overall]
        lines.append(f"{method}: " + ", ".join(parts))
    return lines
