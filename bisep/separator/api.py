"""The one public entry for users: ``Separator.from_pretrained(...)`` and ``separate(audio, prompts)``.

Audio of any length, rate and channel count goes in; one waveform per prompt comes out at the input's rate and
channel count (each channel separated on its own, all channels in one batch), plus optionally the residual: the
input minus everything the prompts selected ("remove this sound"). Long inputs run in overlapping, cross-faded
segments (:mod:`bisep.separator.apply`), so seams are inaudible.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from bisep.audio import AudioSource, load_audio, peak_db, prepare_waveform, resample_numpy, SILENCE_PEAK_DB
from bisep.config import from_dict
from bisep.errors import BisepError
from bisep.grounding import GroundingModel, load_grounding
from bisep.grounding.base import TextFeatures, check_prompts
from bisep.model_folder import read_model_folder
from bisep.separator.apply import Segmentation, apply_segmented
from bisep.separator.model import SeparatorConfig, TextQueriedSeparator
from bisep.separator.resolve import resolve_separator

DEFAULT_SEGMENT_SECONDS = 10.0
DEFAULT_OVERLAP = 0.25


@dataclass
class Separation:
    """``sources``: prompt -> ``(channels, samples)`` float32 at ``sample_rate``; ``residual`` likewise or None."""

    sources: dict[str, np.ndarray]
    residual: np.ndarray | None
    sample_rate: int
    silent_input: bool = False


class Separator:
    """A trained text-queried separator with the grounding model that encodes its prompts."""

    def __init__(self, model: TextQueriedSeparator, grounding: GroundingModel, name: str = "",
                 device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.grounding = grounding.to(self.device).freeze().pad_text_to_context(model.config.attend_padding)
        self.name = name
        self.sample_rate = model.config.sample_rate

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "builtin", device: str | torch.device | None = None,
                        grounding: str | None = None) -> "Separator":
        """Load a model named in :mod:`bisep.pretrained` (``builtin``; ``unittest``, a tiny random model for
        tests), a model folder (``config.json`` + ``model.safetensors``) or a ``bisep train`` run (its best
        checkpoint), as :func:`~bisep.separator.resolve.resolve_separator` decides. ``grounding`` overrides the
        grounding model recorded in the folder."""
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        text = resolve_separator(name_or_path)
        path = Path(text)
        if not path.is_dir():
            from bisep.pretrained import asset_folder

            path = asset_folder("separator", text)
        meta, tensors = read_model_folder(path)
        config = from_dict(SeparatorConfig, meta.get("config", {}), source=str(path / "config.json"))
        model = TextQueriedSeparator(config)
        try:
            model.load_state_dict(tensors)
        except RuntimeError as error:
            raise BisepError(f"{path}: weights do not fit the config ({str(error).splitlines()[0]})") from None
        spec = grounding or _recorded_grounding(path, meta)
        grounding_model = load_grounding(spec, device)
        signature = meta.get("provenance", {}).get("grounding_text_signature")
        if signature and not grounding_model.matches_text_signature(signature):
            raise BisepError(f"{path}: trained on another grounding model's text features than {spec!r} gives "
                             "(a retrained or different model); load it with the grounding model it was trained "
                             "with (--grounding)")
        return cls(model, grounding_model, name=text, device=device)

    @torch.inference_mode()
    def separate(self, audio: AudioSource | np.ndarray | torch.Tensor, prompts: Sequence[str],
                 sample_rate: int | None = None, residual: bool = False,
                 segment_seconds: float = DEFAULT_SEGMENT_SECONDS, overlap: float = DEFAULT_OVERLAP,
                 max_seconds: float | None = None,
                 progress: Callable[[int, int], None] | None = None) -> Separation:
        """Separate ``audio`` (a path, file object, or array ``(samples,)`` / ``(channels, samples)`` with its
        ``sample_rate``) into one waveform per prompt, returned at the input's rate and channel count.
        ``progress(done, total)`` is called after each segment the network has run, all channels at once (for
        progress bars)."""
        prompts = check_prompts(prompts)
        if not 0.0 <= overlap < 1.0:
            raise BisepError(f"overlap must be in [0, 1), got {overlap}")
        if segment_seconds <= 0.1:
            raise BisepError(f"segment must be longer than 0.1 s, got {segment_seconds}")
        if isinstance(audio, (np.ndarray, torch.Tensor)):
            if sample_rate is None:
                raise BisepError("an array needs its sample_rate")
            waveform, rate = prepare_waveform(audio, sample_rate), sample_rate
        else:
            waveform, rate = load_audio(audio, max_seconds=max_seconds)
        array = waveform.numpy()
        silent = peak_db(array) < SILENCE_PEAK_DB
        if silent:
            warnings.warn("the input is silent; the outputs are silent too", stacklevel=2)
        model_input = resample_numpy(array, rate, self.sample_rate) if rate != self.sample_rate else array
        text = self.grounding.encode_text(prompts).to(self.device)
        segmentation = self.segmentation(segment_seconds, overlap)
        outputs = apply_segmented(lambda pieces: self._run(pieces, text), torch.from_numpy(model_input),
                                  segmentation, progress)
        estimates = outputs.transpose(0, 1).numpy()  # (prompts, channels, samples)
        if rate != self.sample_rate:
            estimates = np.stack([resample_numpy(e, self.sample_rate, rate) for e in estimates])
        estimates = _fit_length(estimates, array.shape[-1])
        return Separation(
            sources={prompt: estimates[index].astype(np.float32) for index, prompt in enumerate(prompts)},
            residual=(array - estimates.sum(axis=0)).astype(np.float32) if residual else None,
            sample_rate=rate, silent_input=silent,
        )

    def segmentation(self, segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
                     overlap: float = DEFAULT_OVERLAP) -> Segmentation:
        """Segments at the model's rate, never shorter than its STFT window."""
        return Segmentation.from_seconds(self.sample_rate, segment_seconds, overlap, self.model.config.n_fft)

    def _run(self, pieces: torch.Tensor, text: TextFeatures) -> torch.Tensor:
        """One segment of every channel ``(channels, samples)`` -> ``(channels, prompts, samples)`` on the CPU."""
        channels, length = pieces.shape
        padded = torch.nn.functional.pad(pieces, (0, max(0, self.model.config.n_fft - length)))
        batch_text = TextFeatures(*(torch.cat([t] * channels) for t in (text.embedding, text.tokens, text.mask)))
        waveforms = self.model(padded.to(self.device, torch.float32), batch_text)["waveforms"]
        return waveforms[..., :length].float().cpu()


def _recorded_grounding(folder: Path, meta: dict) -> str:
    """The grounding model a folder names: ``grounding_folder`` (a sub-folder, as ``bisep import`` writes a
    converted LAION-CLAP) or the ``grounding`` spec it was trained with."""
    provenance = meta.get("provenance", {})
    if provenance.get("grounding_folder"):
        return str(folder / provenance["grounding_folder"])
    return provenance.get("grounding", "builtin")


def _fit_length(estimates: np.ndarray, length: int) -> np.ndarray:
    if estimates.shape[-1] >= length:
        return estimates[..., :length]
    return np.pad(estimates, [(0, 0)] * (estimates.ndim - 1) + [(0, length - estimates.shape[-1])])

