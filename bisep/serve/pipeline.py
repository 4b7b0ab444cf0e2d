"""One separation job, from the uploaded file to the files the page shows: audio players and spectrograms.

Every output is written into the job's own folder as FLAC (lossless 16-bit, at the input's rate and channels;
browsers play it and it is half the size of WAV) with a spectrogram PNG beside it. All spectrograms of a job
share one colour scale, set by the input, so a quiet output looks quiet next to it.
"""

from __future__ import annotations

import math
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from bisep.audio import load_audio, save_audio
from bisep.data.corpus import slug
from bisep.data.preview import log_spectrogram
from bisep.errors import BisepError
from bisep.files import atomic_path
from bisep.separator.api import Separator
from bisep.serve.jobs import Job

SPECTROGRAM_COLUMNS = 1000  # time frames drawn at most; longer inputs get a larger hop
DYNAMIC_RANGE_DB = 80.0
_DRAWING = threading.Lock()  # matplotlib's font and colour caches are shared between figures


def run_separation(job: Job, separator: Separator, max_seconds: float) -> dict[str, Any]:
    """Separate ``job.request["audio"]`` by its prompts; write outputs and spectrograms into ``job.folder``.

    Returns the result the API reports: file names (relative to the job folder) for the input, each prompt and
    the residual, and references when the job came from a shipped example.
    """
    request = job.request
    job.stage = "reading the audio"
    try:
        waveform, rate = load_audio(request["audio"], max_seconds=max_seconds)
    except BisepError as error:
        raise BisepError(str(error).replace(str(request["audio"]), request["display_name"])) from None
    array = waveform.numpy()
    job.stage, job.progress = "separating", 0.02

    def progress(done: int, total: int) -> None:
        job.progress = 0.02 + 0.83 * done / total

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        separation = separator.separate(array, request["prompts"], sample_rate=rate, residual=True,
                                        progress=progress)
    job.stage, job.progress = "drawing spectrograms", 0.86
    top_db = float(log_spectrogram(_mono(array), *_stft_size(rate, array.shape[-1])).max())
    files: list[str] = []

    def publish(stem: str, audio: np.ndarray, title: str) -> dict[str, str]:
        save_audio(job.folder / f"{stem}.flac", audio, rate)
        write_spectrogram(audio, rate, job.folder / f"{stem}.png", title, top_db)
        files.extend((f"{stem}.flac", f"{stem}.png"))
        return {"audio": f"{stem}.flac", "spectrogram": f"{stem}.png"}

    result: dict[str, Any] = {
        "input": {"name": request["display_name"], "seconds": array.shape[-1] / rate, "sample_rate": rate,
                  "channels": array.shape[0], **publish("input", array, "input")},
        "tracks": [],
        "warnings": [str(warning.message) for warning in caught],
    }
    references = request.get("references", {})
    for index, prompt in enumerate(request["prompts"]):
        track = {"prompt": prompt, **publish(f"{index + 1}-{slug(prompt)}"[:60], separation.sources[prompt], prompt)}
        if prompt in references:
            reference, reference_rate = load_audio(references[prompt]["path"])
            stem = f"reference-{index + 1}"
            write_spectrogram(reference.numpy(), reference_rate, job.folder / f"{stem}.png",
                              f"reference: {prompt}", top_db)
            files.append(f"{stem}.png")
            track["reference"] = {"audio_url": references[prompt]["url"], "spectrogram": f"{stem}.png"}
        result["tracks"].append(track)
        job.progress = 0.86 + 0.13 * (index + 1) / len(request["prompts"])
    result["residual"] = publish("residual", separation.residual, "residual (everything else)")
    result["files"] = files
    return result


def write_spectrogram(waveform: np.ndarray, rate: int, path: Path, title: str, top_db: float | None = None) -> None:
    """A PNG of the log spectrogram of ``(channels, samples)`` (channels averaged), seconds by kHz, with
    colours from ``top_db - 80`` to ``top_db`` dB (default: the waveform's own peak)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    image = log_spectrogram(_mono(waveform), *_stft_size(rate, waveform.shape[-1]))
    top = image.max() if top_db is None else top_db
    with _DRAWING:
        figure = Figure(figsize=(9, 2.2), dpi=100)
        FigureCanvasAgg(figure)
        axis = figure.add_subplot()
        axis.imshow(image, origin="lower", aspect="auto", cmap="magma", vmin=top - DYNAMIC_RANGE_DB, vmax=top,
                    extent=(0, waveform.shape[-1] / rate, 0, rate / 2000), interpolation="nearest")
        axis.set_title(title[:90], fontsize=9, loc="left")
        axis.set_xlabel("time (s)", fontsize=8)
        axis.set_ylabel("kHz", fontsize=8)
        axis.tick_params(labelsize=7)
        figure.tight_layout(pad=0.4)
        with atomic_path(path) as temporary:
            figure.savefig(temporary, format="png")


def _mono(waveform: np.ndarray) -> np.ndarray:
    return np.asarray(waveform, np.float64).reshape(-1, waveform.shape[-1]).mean(axis=0)


def _stft_size(rate: int, samples: int) -> tuple[int, int]:
    """``(n_fft, hop)``: windows of about 32 ms, and a hop that keeps at most SPECTROGRAM_COLUMNS frames."""
    n_fft = 2 ** round(math.log2(max(rate * 0.032, 64)))
    return n_fft, max(n_fft // 4, math.ceil(samples / SPECTROGRAM_COLUMNS))
