"""Spectrogram pictures, drawn the same way wherever bisep shows sound (demo, serve, evaluation, dataset preview).

Figures use matplotlib's object API with the Agg canvas, never ``pyplot``: no global figure state, no backend
switch, so drawing works in server threads (one lock guards matplotlib's shared font and colour caches).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np

from bisep.files import atomic_path

DYNAMIC_RANGE_DB = 80.0
SPECTROGRAM_COLUMNS = 1000  # time frames drawn at most; longer inputs get a larger hop
DRAWING = threading.Lock()


def stft_size(sample_rate: int, samples: int) -> tuple[int, int]:
    """``(n_fft, hop)``: windows of about 32 ms, and a hop that keeps at most ``SPECTROGRAM_COLUMNS`` frames."""
    n_fft = 2 ** round(math.log2(max(sample_rate * 0.032, 64)))
    return n_fft, max(n_fft // 4, math.ceil(samples / SPECTROGRAM_COLUMNS))


def log_spectrogram(waveform: np.ndarray, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """``(samples,)`` or ``(channels, samples)`` (channels averaged) -> dB magnitude ``(n_fft // 2 + 1, frames)``,
    floored ``DYNAMIC_RANGE_DB`` below its peak."""
    mono = np.asarray(waveform, np.float64).reshape(-1, np.shape(waveform)[-1]).mean(axis=0)
    padded = np.pad(mono, (n_fft // 2, n_fft // 2))
    return _decibels(np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop])


def file_log_spectrogram(path: str | Path) -> tuple[np.ndarray, int, int]:
    """:func:`log_spectrogram` of an audio file at :func:`stft_size`, reading only the frames it needs (one
    window per column), so memory does not grow with the file's duration. Returns ``(image, rate, samples)``."""
    import soundfile

    with soundfile.SoundFile(path) as audio:
        rate, samples = audio.samplerate, audio.frames
        n_fft, hop = stft_size(rate, samples)
        frames = np.zeros(((samples + 2 * (n_fft // 2) - n_fft) // hop + 1, n_fft))
        for index in range(len(frames)):
            start = index * hop - n_fft // 2  # the window's first sample in the unpadded file
            audio.seek(max(0, start))
            data = audio.read(n_fft - max(0, -start), dtype="float64", always_2d=True).mean(axis=1)
            frames[index, max(0, -start):max(0, -start) + len(data)] = data
    return _decibels(frames), rate, samples


def _decibels(frames: np.ndarray) -> np.ndarray:
    """``(frames, n_fft)`` windows -> dB magnitude ``(n_fft // 2 + 1, frames)`` floored below its peak."""
    magnitude = np.abs(np.fft.rfft(frames * np.hanning(frames.shape[1]), axis=1)).T
    decibels = 20 * np.log10(np.maximum(magnitude, 1e-8))
    return np.maximum(decibels, decibels.max() - DYNAMIC_RANGE_DB)


def peak_db(waveform: np.ndarray, sample_rate: int) -> float:
    """The top of the colour scale :func:`draw_spectrogram` would give ``waveform``; pass it to others to share."""
    return float(log_spectrogram(waveform, *stft_size(sample_rate, np.shape(waveform)[-1])).max())


def new_figure(rows: int = 1, columns: int = 1, size: tuple[float, float] = (9, 2.2)):
    """``(figure, axes)`` with ``axes`` a ``(rows, columns)`` array, ``size`` in inches (100 dpi)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.subplots(rows, columns, squeeze=False)


def draw_spectrogram(axis, waveform: np.ndarray, sample_rate: int, title: str, top_db: float | None = None,
                     fontsize: int = 8) -> None:
    """The log spectrogram of ``(samples,)`` or ``(channels, samples)`` on ``axis``, seconds by kHz, colours from
    ``top_db - 80`` to ``top_db`` dB (default: the waveform's own peak)."""
    image = log_spectrogram(waveform, *stft_size(sample_rate, np.shape(waveform)[-1]))
    _draw_image(axis, image, sample_rate, np.shape(waveform)[-1], title, top_db, fontsize)


def _draw_image(axis, image: np.ndarray, sample_rate: int, samples: int, title: str, top_db: float | None,
                fontsize: int = 8) -> None:
    top = image.max() if top_db is None else top_db
    axis.imshow(image, origin="lower", aspect="auto", cmap="magma", vmin=top - DYNAMIC_RANGE_DB, vmax=top,
                extent=(0, samples / sample_rate, 0, sample_rate / 2000), interpolation="nearest")
    axis.set_title(title, fontsize=fontsize + 1, loc="left")
    axis.set_xlabel("time (s)", fontsize=fontsize)
    axis.set_ylabel("kHz", fontsize=fontsize)
    axis.tick_params(labelsize=fontsize - 1)


def save_figure(figure, path: str | Path, dpi: int = 100) -> Path:
    """Write ``figure`` as a PNG atomically."""
    figure.tight_layout(pad=0.4)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=dpi, format="png")
    return Path(path)


def write_spectrogram(path: str | Path, waveform: np.ndarray, sample_rate: int, title: str,
                      top_db: float | None = None) -> Path:
    """One spectrogram PNG (see :func:`draw_spectrogram`); safe to call from several threads."""
    with DRAWING:
        figure, axes = new_figure()
        draw_spectrogram(axes[0, 0], waveform, sample_rate, title[:90], top_db)
        return save_figure(figure, path)


def write_file_spectrogram(path: str | Path, audio_path: str | Path, title: str, top_db: float | None = None) -> Path:
    """:func:`write_spectrogram` of an audio file, read window by window (:func:`file_log_spectrogram`)."""
    image, rate, samples = file_log_spectrogram(audio_path)
    with DRAWING:
        figure, axes = new_figure()
        _draw_image(axes[0, 0], image, rate, samples, title[:90], top_db)
        return save_figure(figure, path)
