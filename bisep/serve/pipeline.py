"""One separation job, from the uploaded file to the files the page shows: audio players and spectrograms.

Every output is written into the job's own folder as FLAC (lossless 16-bit, at the input's rate and channels;
browsers play it and it is half the size of WAV) with a spectrogram PNG beside it (:mod:`bisep.publish`).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from bisep.audio import load_audio
from bisep.errors import BisepError
from bisep.publish import publish_separation
from bisep.separator.api import Separator
from bisep.serve.jobs import Job


def run_separation(job: Job, separator: Separator, limits: Mapping[str, Any],
                   stopping: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """Separate ``job.request["audio"]`` by its prompts; write outputs and spectrograms into ``job.folder``.
    ``limits`` (``max_rate``, ``max_seconds``, ``max_samples``) hold while the file is decoded; when
    ``stopping()`` turns true (the server shuts down) the job fails at its next segment.

    Returns the result the API reports: file names (relative to the job folder) for the input, each prompt and
    the residual, and references when the job came from a shipped example.
    """
    request = job.request
    job.stage, job.progress = "separating", 0.02
    references = request.get("references", {})
    loaded = {prompt: load_audio(reference["path"]) for prompt, reference in references.items()}

    def progress(fraction: float) -> None:
        if stopping():
            raise BisepError("the server stopped before this separation finished")
        job.progress = 0.02 + 0.97 * fraction
        if fraction >= 0.85:
            job.stage = "drawing spectrograms"

    try:
        published = publish_separation(separator, request["audio"], request["prompts"], job.folder,
                                       {prompt: (waveform.numpy(), rate) for prompt, (waveform, rate) in loaded.items()},
                                       progress=progress, **limits)
    except BisepError as error:
        raise BisepError(str(error).replace(str(request["audio"]), request["display_name"])) from None
    tracks = []
    for track in published["tracks"]:
        row = {key: track[key] for key in ("prompt", "audio", "spectrogram")}
        if "reference_spectrogram" in track:
            row["reference"] = {"audio_url": references[track["prompt"]]["url"],
                                "spectrogram": track["reference_spectrogram"]}
        tracks.append(row)
    return {"input": {"name": request["display_name"], **published["input"]},
            "tracks": tracks, "residual": published["residual"], "files": published["files"],
            "warnings": published["warnings"]}
