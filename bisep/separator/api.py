"""The one public entry for users: ``Separator.from_pretrained(...)`` and ``separate(audio, prompts)``.

Audio of any length, rate and channel count goes in; one waveform per prompt comes out at the input's rate and
channel count (each channel separated on its own), plus optionally the residual: the input minus everything
the prompts selected ("remove this sound"). Long inputs run in overlapping segments that are cross-faded
(linear fades over the overlap, weights normalised), so memory stays bounded and seams are inaudible.
"""

from __future__ import annotations

import itertools
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
from bisep.grounding.base import check_prompts
from bisep.separator.folder import read_model_folder
from bisep.separator.model import SeparatorConfig, TextQueriedSeparator

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
        """Load a shipped model by name (``builtin``; ``unittest`` is a tiny random model for tests) or a model
        folder (``config.json`` + ``model.safetensors``, as ``bisep train`` writes). ``grounding`` overrides
        the grounding model recorded in the folder."""
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        text = str(name_or_path)
        if text == "unittest":
            return _unittest_separator(device)
        path = Path(text).expanduser()
        if not path.is_dir():
            if "/" in text or text.startswith("."):
                raise BisepError(f"{text}: model folder not found")
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
        ``progress(done, total)`` is called after each segment the network has run (for progress bars)."""
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
        segments = len(model_input) * len(self._segment_starts(model_input.shape[-1], segment_seconds, overlap))
        done = itertools.count(1)
        advance = (lambda: progress(next(done), segments)) if progress else (lambda: None)
        estimates = np.stack([self._separate_channel(channel, text, segment_seconds, overlap, advance)
                              for channel in model_input], axis=1)
        if rate != self.sample_rate:
            estimates = np.stack([resample_numpy(e, self.sample_rate, rate) for e in estimates])
        estimates = _fit_length(estimates, array.shape[-1])
        return Separation(
            sources={prompt: estimates[index].astype(np.float32) for index, prompt in enumerate(prompts)},
            residual=(array - estimates.sum(axis=0)).astype(np.float32) if residual else None,
            sample_rate=rate, silent_input=silent,
        )

    def _segment_length(self, segment_seconds: float) -> int:
        return max(round(segment_seconds * self.sample_rate), self.model.config.n_fft)

    def _segment_starts(self, total: int, segment_seconds: float, overlap: float) -> list[int]:
        """Where the segments of a ``total``-sample channel start (one segment when it fits)."""
        segment = self._segment_length(segment_seconds)
        if total <= segment:
            return [0]
        hop = max(1, round(segment * (1 - overlap)))
        return list(range(0, total - segment, hop)) + [total - segment]

    def _separate_channel(self, channel: np.ndarray, text, segment_seconds: float, overlap: float,
                          advance: Callable[[], None]) -> np.ndarray:
        """``(samples,)`` -> ``(prompts, samples)`` by cross-faded overlapping segments."""
        total = channel.shape[0]
        segment = self._segment_length(segment_seconds)
        prompts = text.embedding.shape[0]
        if total <= segment:
            output = self._run(channel, text)[:, :total]
            advance()
            return output
        hop = max(1, round(segment * (1 - overlap)))
        fade = segment - hop
        window = np.ones(segment, np.float32)
        if fade:
            ramp = (np.arange(fade, dtype=np.float32) + 1) / (fade + 1)
            window[:fade], window[-fade:] = ramp, ramp[::-1]
        output = np.zeros((prompts, total), np.float32)
        weights = np.zeros(total, np.float32)
        for start in self._segment_starts(total, segment_seconds, overlap):
            piece = self._run(channel[start:start + segment], text)
            output[:, start:start + segment] += piece * window
            weights[start:start + segment] += window
            advance()
        return output / np.maximum(weights, 1e-8)

    def _run(self, piece: np.ndarray, text) -> np.ndarray:
        length = piece.shape[0]
        minimum = self.model.config.n_fft
        padded = np.pad(piece, (0, max(0, minimum - length)))
        mixture = torch.from_numpy(np.ascontiguousarray(padded, np.float32))[None].to(self.device)
        waveforms = self.model(mixture, text)["waveforms"][0]
        return waveforms[:, :length].float().cpu().numpy()


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


def _unittest_separator(device) -> Separator:
    """A tiny model with seeded random weights and a tiny random grounding model: drives the CLI in seconds."""
    from bisep.grounding.builtin import BuiltinGrounding, BuiltinGroundingConfig

    generator_state = torch.get_rng_state()
    torch.manual_seed(0)
    grounding = BuiltinGrounding(BuiltinGroundingConfig(embedding_dim=16, channels=[4, 4, 4, 4]))
    model = TextQueriedSeparator(SeparatorConfig(n_fft=254, hop_length=64, num_downs=4, base_channels=4,
                                                 out_channels=4, heads=1, token_dim=grounding.token_dim,
                                                 embedding_dim=16))
    torch.set_rng_state(generator_state)
    return Separator(model, grounding, name="unittest", device=device)
