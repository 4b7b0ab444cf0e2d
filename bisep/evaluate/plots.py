"""Figures of an evaluation: SDRi per class, the SDRi distribution, and spectrograms of chosen examples."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from bisep.plots import draw_spectrogram, new_figure, save_figure

METHOD_COLOURS = {"mixture": "#7f7f7f", "irm": "#2ca02c", "ibm": "#d62728"}


def per_class_bars(path: Path, summary: dict, primary: str, metric: str = "sdri") -> Path | None:
    """Horizontal bars of ``primary``'s mean ``metric`` per class with 95% intervals; the oracles' means as
    markers. None when the dataset has no class labels."""
    classes = summary[primary]["per_class"]
    if not classes:
        return None
    names = sorted(classes, key=lambda name: classes[name][metric]["mean"])
    means = np.array([classes[name][metric]["mean"] for name in names])
    intervals = [classes[name][metric]["ci95"] for name in names]
    errors = np.array([[mean - ci[0], ci[1] - mean] if ci else [0.0, 0.0] for mean, ci in zip(means, intervals)]).T
    figure, axes = new_figure(size=(7, 1.2 + 0.28 * len(names)))
    axis = axes[0, 0]
    rows = np.arange(len(names))
    axis.barh(rows, means, xerr=errors, color="#1f77b4", ecolor="#333333", capsize=2, label=primary)
    for method, colour in METHOD_COLOURS.items():
        per_class = summary.get(method, {}).get("per_class", {}) if method not in (primary, "mixture") else {}
        values = [per_class.get(name, {}).get(metric, {}).get("mean") for name in names]
        if any(value is not None for value in values):
            axis.scatter([np.nan if v is None else v for v in values], rows, color=colour, marker="|", s=120,
                         label=method, zorder=3)
    axis.set_yticks(rows, names, fontsize=7)
    axis.axvline(0.0, color="black", linewidth=0.6)
    axis.set_xlabel(f"{metric.upper().replace('_', '-')} (dB), mean and 95% interval")
    axis.legend(fontsize=7, loc="best")
    return save_figure(figure, path)


def histogram(path: Path, values: dict[str, list[float]], metric: str = "sdri") -> Path:
    """Step histograms of per-source ``metric`` values, one per method (same bins)."""
    figure, axes = new_figure(size=(7, 3.6))
    axis = axes[0, 0]
    everything = np.concatenate([np.asarray(v, np.float64) for v in values.values() if len(v)])
    low, high = np.percentile(everything, [0.5, 99.5]) if everything.size else (-1.0, 1.0)
    bins = np.linspace(low - 0.5, high + 0.5, 41)
    for method, method_values in values.items():
        axis.hist(np.clip(method_values, bins[0], bins[-1]), bins=bins, histtype="step", linewidth=1.4,
                  color=METHOD_COLOURS.get(method, "#1f77b4"), label=f"{method} (n={len(method_values)})")
    axis.axvline(0.0, color="black", linewidth=0.6)
    axis.set_xlabel(f"{metric.upper().replace('_', '-')} per source (dB; tails clipped into the end bins)")
    axis.set_ylabel("sources")
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def spectrogram_sheet(path: Path, title: str, mixture: np.ndarray, rows: list[tuple[str, list[tuple[str, np.ndarray]]]],
                      sample_rate: int) -> Path:
    """The mixture on top, then one row per source: its panels (reference, estimates) side by side."""
    columns = max(len(panels) for _, panels in rows)
    figure, axes = new_figure(len(rows) + 1, columns, size=(4.2 * columns, 2.3 * (len(rows) + 1)))
    for axis in axes.flat:
        axis.set_axis_off()
    panels = [(axes[0, 0], "mixture", mixture)]
    panels += [(axes[row + 1, column], f"{label}\n{name}", waveform)
               for row, (label, row_panels) in enumerate(rows) for column, (name, waveform) in enumerate(row_panels)]
    for axis, name, waveform in panels:
        axis.set_axis_on()
        draw_spectrogram(axis, np.asarray(waveform, np.float32), sample_rate, "\n".join(textwrap.wrap(name, 60)),
                         fontsize=6)
    figure.suptitle(title, fontsize=9)
    return save_figure(figure, path)
