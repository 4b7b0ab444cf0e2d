"""A separation written out for people to listen to and look at: one audio file and one spectrogram per output.

``bisep demo`` and ``bisep serve`` both show separations this way, so both call :func:`publish_separation`.
All spectrograms of one separation share a colour scale, set by the input, so a quiet output looks quiet next
to it. File names come from :func:`bisep.files.output_stems`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from bisep.audio import save_audio
from bisep.files import output_stems
from bisep.plots import peak_db, write_spectrogram


def publish_separation(separator, audio: np.ndarray, sample_rate: int, prompts: Sequence[str], folder: Path,
                       references: Mapping[str, tuple[np.ndarray, int]] | None = None, audio_format: str = "flac",
                       progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Separate ``audio`` ``(channels, samples)`` by ``prompts`` (with the residual) and write into ``folder``:
    ``input``, one file per prompt and ``residual`` as audio with a PNG beside each, and a PNG of each known
    reference (``prompt -> (waveform, rate)``). ``progress(fraction)`` runs from 0 to 1.

    Returns ``input``, ``tracks`` (``prompt``, ``audio``, ``spectrogram``, ``reference_spectrogram``),
    ``residual``, ``files`` (every file written, relative to ``folder``), ``warnings`` and the ``separation``.
    """
    references = references or {}
    report = progress or (lambda fraction: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        separation = separator.separate(audio, list(prompts), sample_rate=sample_rate, residual=True,
                                        progress=lambda done, total: report(0.85 * done / total))
    top_db = peak_db(audio, sample_rate)
    files: list[str] = []

    def write(stem: str, waveform: np.ndarray, title: str) -> dict[str, str]:
        save_audio(folder / f"{stem}.{audio_format}", waveform, sample_rate)
        write_spectrogram(folder / f"{stem}.png", waveform, sample_rate, title, top_db)
        files.extend((f"{stem}.{audio_format}", f"{stem}.png"))
        return {"audio": f"{stem}.{audio_format}", "spectrogram": f"{stem}.png"}

    result: dict[str, Any] = {"input": write("input", audio, "input"), "tracks": []}
    stems = output_stems(prompts)
    for index, prompt in enumerate(prompts):
        track = {"prompt": prompt, **write(stems[prompt], separation.sources[prompt], prompt)}
        if prompt in references:
            waveform, rate = references[prompt]
            picture = f"{stems[prompt]}.reference.png"
            write_spectrogram(folder / picture, waveform, rate, f"reference: {prompt}", top_db)
            files.append(picture)
            track["reference_spectrogram"] = picture
        result["tracks"].append(track)
        report(0.85 + 0.15 * (index + 1) / (len(prompts) + 1))
    result["residual"] = write("residual", separation.residual, "residual (everything else)")
    report(1.0)
    return {**result, "files": files, "warnings": [str(warning.message) for warning in caught],
            "separation": separation}
