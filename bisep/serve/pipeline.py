"""One separation job, from the uploaded file to the files the page shows: audio players and spectrograms.

Every output is written into the job's own folder as FLAC (lossless 16-bit, at the input's rate and channels;
browsers play it and it is half the size of WAV) with a spectrogram PNG beside it (:mod:`bisep.publish`).
"""

from __future__ import annotations

from typing import Any

from bisep.audio import load_audio
from bisep.errors import BisepError
from bisep.publish import publish_separation
from bisep.separator.api import Separator
from bisep.serve.jobs import Job


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
    references = request.get("references", {})
    loaded = {prompt: tuple(load_audio(reference["path"])) for prompt, reference in references.items()}

    def progress(fraction: float) -> None:
        job.progress = 0.02 + 0.97 * fraction
        if fraction >= 0.85:
            job.stage = "drawing spectrograms"

    published = publish_separation(separator, array, rate, request["prompts"], job.folder,
                                   {prompt: (waveform.numpy(), rate) for prompt, (waveform, rate) in loaded.items()},
                                   progress=progress)
    tracks = []
    for track in published["tracks"]:
        row = {key: track[key] for key in ("prompt", "audio", "spectrogram")}
        if "reference_spectrogram" in track:
            row["reference"] = {"audio_url": references[track["prompt"]]["url"],
                                "spectrogram": track["reference_spectrogram"]}
        tracks.append(row)
    return {"input": {"name": request["display_name"], "seconds": array.shape[-1] / rate, "sample_rate": rate,
                      "channels": array.shape[0], **published["input"]},
            "tracks": tracks, "residual": published["residual"], "files": published["files"],
            "warnings": published["warnings"]}
