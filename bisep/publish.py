"""A separation written out for people to listen to and look at: one audio file and one spectrogram per output.

``bisep demo`` and ``bisep serve`` both show separations this way, so both call :func:`publish_separation`.
The separation streams from the input file into the output files (:meth:`Separator.separate_file`) and each
spectrogram is drawn from its written file, so memory does not grow with the input's duration. All spectrograms
of one separation share a colour scale, set by the input, so a quiet output looks quiet next to it. File names
come from :func:`bisep.files.output_stems`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from bisep.files import output_stems
from bisep.plots import file_log_spectrogram, write_file_spectrogram, write_spectrogram


def publish_separation(separator, source: Path, prompts: Sequence[str], folder: Path,
                       references: Mapping[str, tuple[np.ndarray, int]] | None = None, audio_format: str = "flac",
                       progress: Callable[[float], None] | None = None, **limits) -> dict[str, Any]:
    """Separate the audio file ``source`` by ``prompts`` (with the residual) and write into ``folder``: ``input``
    (the input as separated), one file per prompt and ``residual`` as audio with a PNG beside each, and a PNG of
    each known reference (``prompt -> (waveform (channels, samples), rate)``). ``limits`` go to
    :meth:`~bisep.separator.api.Separator.separate_file` (``max_rate``, ``max_seconds``, ``max_samples``).
    ``progress(fraction)`` runs from 0 to 1.

    Returns ``input`` (with ``seconds``, ``sample_rate``, ``channels``), ``tracks`` (``prompt``, ``audio``,
    ``spectrogram``, ``reference_spectrogram``), ``residual``, ``files`` (every file written, relative to
    ``folder``) and ``warnings``.
    """
    references = references or {}
    report = progress or (lambda fraction: None)
    stems = output_stems(prompts)
    names = [*(stems[prompt] for prompt in prompts), "residual"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = separator.separate_file(source, list(prompts), [folder / f"{name}.{audio_format}" for name in names],
                                          residual=True, copy_input=folder / f"input.{audio_format}",
                                          progress=lambda done, total: report(0.85 * done / total), **limits)
    top_db = float(file_log_spectrogram(folder / f"input.{audio_format}")[0].max())
    files: list[str] = []

    def draw(stem: str, title: str) -> dict[str, str]:
        write_file_spectrogram(folder / f"{stem}.png", folder / f"{stem}.{audio_format}", title, top_db)
        files.extend((f"{stem}.{audio_format}", f"{stem}.png"))
        return {"audio": f"{stem}.{audio_format}", "spectrogram": f"{stem}.png"}

    result: dict[str, Any] = {"input": {**draw("input", "input"), "seconds": summary.samples / summary.sample_rate,
                                        "sample_rate": summary.sample_rate, "channels": summary.channels},
                              "tracks": []}
    for index, prompt in enumerate(prompts):
        track = {"prompt": prompt, **draw(stems[prompt], prompt)}
        if prompt in references:
            waveform, rate = references[prompt]
            picture = f"{stems[prompt]}.reference.png"
            write_spectrogram(folder / picture, waveform, rate, f"reference: {prompt}", top_db)
            files.append(picture)
            track["reference_spectrogram"] = picture
        result["tracks"].append(track)
        report(0.85 + 0.15 * (index + 1) / (len(prompts) + 1))
    result["residual"] = draw("residual", "residual (everything else)")
    report(1.0)
    return {**result, "files": files, "warnings": [str(warning.message) for warning in caught]}
