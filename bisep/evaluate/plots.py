"""Figures of an evaluation: SDRi per class, the SDRi distribution, and spectrograms of chosen examples."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from bisep.data.preview import log_spectrogram
from bisep.files import atomic_path

METHOD_COLOURS = {"mixture": "#7f7f7f", "irm": "#2ca02c", "ibm": "#d62728"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _save(figure, path: Path) -> Path:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    _pyplot().close(figure)
    return path


def per_class_bars(path: Path, summary: dict, primary: str, metric: str = "sdri") -> Path | None:
    """Horizontal bars of ``primary``'s mean ``metric`` per class with 95% intervals; the oracles' means as
    markers. None when the dataset has no class labels."""
    classes = summary[primary]["per_class"]
    if not classes:
        return None
    pyplot = _pyplot()
    names = sorted(classes, key=lambda name: classes[name][metric]["mean"])
    means = np.array([classes[name][metric]["mean"] for name in names])
    intervals = [classes[name][metric]["ci95"] for name in names]
    errors = np.array([[mean - ci[0], ci[1] - mean] if ci else [0.0, 0.0] for mean, ci in zip(means, intervals)]).T
    figure, axis = pyplot.subplots(figsize=(7, 1.2 + 0.28 * len(names)))
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
    figure.tight_layout()
    return _save(figure, path)


def histogram(path: Path, values: dict[str, list[float]], metric: str = "sdri") -> Path:
    """Step histograms of per-source ``metric`` values, one per method (same bins)."""
    pyplot = _pyplot()
    figure, axis = pyplot.subplots(figsize=(7, 3.6))
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
    figure.tight_layout()
    return _save(figure, path)


def spectrogram_sheet(path: Path, title: str, mixture: np.ndarray, rows: list[tuple[str, list[tuple[str, np.ndarray]]]],
                      sample_rate: int) -> Path:
    """The mixture on top, then one row per source: its panels (reference, estimates) side by side."""
    pyplot = _pyplot()
    columns = max(len(panels) for _, panels in rows)
    figure, axes = pyplot.subplots(len(rows) + 1, columns, figsize=(4.2 * columns, 2.3 * (len(rows) + 1)),
                                   squeeze=False)
    extent = (0, mixture.shape[-1] / sample_rate, 0, sample_rate / 2000)
    for axis in axes.flat:
        axis.set_axis_off()
    panels = [(axes[0, 0], "mixture", mixture)]
    panels += [(axes[row + 1, column], f"{label}\n{name}", waveform)
               for row, (label, row_panels) in enumerate(rows) for column, (name, waveform) in enumerate(row_panels)]
    for axis, name, waveform in panels:
        axis.set_axis_on()
        axis.imshow(log_spectrogram(np.asarray(waveform, np.float32)), origin="lower", aspect="auto", cmap="magma",
                    extent=extent)
        axis.set_title("\n".join(textwrap.wrap(name, 60)), fontsize=7)
        axis.set_xlabel("s", fontsize=6)
        axis.set_ylabel("kHz", fontsize=6)
        axis.tick_params(labelsize=6)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return _save(figure, path)
