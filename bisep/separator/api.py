"""The one public entry for users: ``Separator.from_pretrained(...)`` and ``separate(audio, prompts)``.

Audio of any length, rate and channel count goes in; one waveform per prompt comes out at the input's rate and
channel count (each channel separated on its own, all channels in one batch), plus optionally the residual: the
input minus everything the prompts selected ("remove this sound"). Long inputs run in overlapping, cross-faded
segments (:mod:`bisep.separator.apply`), so seams are inaudible.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from bisep.audio import (AudioReader, AudioSource, AudioWriter, BlockResampler, peak_db, prepare_waveform,
                         SILENCE_PEAK_DB)
from bisep.config import from_dict
from bisep.errors import BisepError
from bisep.grounding import GroundingModel, load_grounding
from bisep.grounding.base import TextFeatures, check_prompts
from bisep.model_folder import read_model_folder
from bisep.separator.apply import Segmentation, SegmentedStream
from bisep.separator.model import SeparatorConfig, TextQueriedSeparator
from bisep.separator.resolve import resolve_separator

DEFAULT_SEGMENT_SECONDS = 10.0
DEFAULT_OVERLAP = 0.25
MAX_BATCH = 4  # channel-prompt pairs per network call; each holds ~60 MB of activations for a 10 s segment
# Finished output leaves a stream in pieces of this many seconds: a whole hop for 8 channels x 8 prompts is
# ~100 MB per copy at 48 kHz, and resampling, the residual and the writers each hold a copy.
OUTPUT_PIECE_SECONDS = 1.0


@dataclass
class Separation:
    """``sources``: prompt -> ``(channels, samples)`` float32 at ``sample_rate``; ``residual`` likewise or None."""

    sources: dict[str, np.ndarray]
    residual: np.ndarray | None
    sample_rate: int
    silent_input: bool = False


@dataclass
class FileSeparation:
    """What :meth:`Separator.separate_file` wrote: ``samples`` per channel at ``sample_rate``."""

    samples: int
    sample_rate: int
    channels: int
    silent_input: bool


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
        _check_tensors(path, model, tensors)
        model.load_state_dict(tensors)
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
        progress bars). The whole result is held in memory; :meth:`separate_file` streams to files instead."""
        with contextlib.ExitStack() as stack:
            if isinstance(audio, (np.ndarray, torch.Tensor)):
                if sample_rate is None:
                    raise BisepError("an array needs its sample_rate")
                array = prepare_waveform(audio, sample_rate).numpy()
                blocks, rate, channels, total = [array], sample_rate, array.shape[0], array.shape[-1]
            else:
                reader = stack.enter_context(AudioReader(audio, max_seconds=max_seconds))
                blocks, rate, channels, total = reader.blocks(), reader.rate, reader.channels, reader.frames
            stream = self.stream(rate, channels, prompts, residual, segment_seconds, overlap, progress, total)
            pieces = [piece for block in blocks for piece in stream.push(block)] + list(stream.finish())
        outputs = np.concatenate(pieces, axis=-1)  # (prompts [+ residual], channels, samples)
        return Separation(sources={prompt: outputs[index] for index, prompt in enumerate(stream.prompts)},
                          residual=outputs[-1] if residual else None, sample_rate=rate,
                          silent_input=stream.silent_input)

    @torch.inference_mode()
    def separate_file(self, source: AudioSource, prompts: Sequence[str], targets: Sequence[str | Path],
                      residual: bool = False, copy_input: str | Path | None = None, max_rate: int | None = None,
                      max_seconds: float | None = None, max_samples: int | None = None,
                      segment_seconds: float = DEFAULT_SEGMENT_SECONDS, overlap: float = DEFAULT_OVERLAP,
                      progress: Callable[[int, int], None] | None = None,
                      subtype: str | None = None) -> FileSeparation:
        """Separate a file into ``targets`` (one path per prompt, then the residual's when ``residual``), block by
        block: memory is bounded by the segment length x channels x prompts, never by the duration. Inputs
        above ``max_rate`` Hz are resampled to it first; ``copy_input`` also writes the input as separated.
        ``max_samples`` caps the decoded frames x channels. A failure leaves no target behind."""
        with contextlib.ExitStack() as stack:
            reader = stack.enter_context(AudioReader(source, max_seconds, max_samples))
            rate = min(reader.rate, max_rate) if max_rate else reader.rate
            expected = math.ceil(reader.frames * rate / reader.rate)
            stream = self.stream(rate, reader.channels, prompts, residual, segment_seconds, overlap, progress,
                                 expected)
            if len(targets) != len(stream.prompts) + residual:
                raise ValueError(f"{len(targets)} targets for {len(stream.prompts)} prompts (residual: {residual})")
            writers = [stack.enter_context(AudioWriter(path, rate, reader.channels, subtype)) for path in targets]
            copy = stack.enter_context(AudioWriter(copy_input, rate, reader.channels, subtype)) if copy_input else None
            converter = BlockResampler(reader.rate, rate, reader.channels)

            def write(block: np.ndarray, pieces: Iterator[np.ndarray]) -> None:
                if copy is not None:
                    copy.write(block)
                for outputs in pieces:
                    for writer, output in zip(writers, outputs):
                        writer.write(output)

            for block in reader.blocks():
                converted = converter.push(block)
                write(converted, stream.push(converted))
            converted = converter.push(np.zeros((reader.channels, 0), np.float32), last=True)
            write(converted, stream.push(converted))
            write(np.zeros((reader.channels, 0), np.float32), stream.finish())
        return FileSeparation(stream.samples, rate, reader.channels, stream.silent_input)

    def stream(self, sample_rate: int, channels: int, prompts: Sequence[str], residual: bool = False,
               segment_seconds: float = DEFAULT_SEGMENT_SECONDS, overlap: float = DEFAULT_OVERLAP,
               progress: Callable[[int, int], None] | None = None,
               expected_samples: int | None = None) -> "SeparationStream":
        """A :class:`SeparationStream` for input at ``sample_rate`` Hz with ``channels`` channels;
        ``expected_samples`` (the input's length, if known) only sets the progress total."""
        if not 0.0 <= overlap < 1.0:
            raise BisepError(f"overlap must be in [0, 1), got {overlap}")
        if segment_seconds <= 0.1:
            raise BisepError(f"segment must be longer than 0.1 s, got {segment_seconds}")
        return SeparationStream(self, sample_rate, channels, check_prompts(prompts), residual,
                                self.segmentation(segment_seconds, overlap), progress, expected_samples)

    def segmentation(self, segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
                     overlap: float = DEFAULT_OVERLAP) -> Segmentation:
        """Segments at the model's rate, never shorter than its STFT window."""
        return Segmentation.from_seconds(self.sample_rate, segment_seconds, overlap, self.model.config.n_fft)

    @torch.inference_mode()
    def _run(self, pieces: torch.Tensor, text: TextFeatures) -> torch.Tensor:
        """One segment of every channel ``(channels, samples)`` -> ``(channels, prompts, samples)`` on the CPU,
        at most ``MAX_BATCH`` channel-prompt pairs per network call (8 channels x 8 prompts at once would hold
        64 spectrograms' activations)."""
        prompts = text.embedding.shape[0]
        prompt_step = min(prompts, MAX_BATCH)
        channel_step = max(1, MAX_BATCH // prompt_step)
        return torch.cat([
            torch.cat([self._run_batch(pieces[channel:channel + channel_step],
                                       TextFeatures(*(t[first:first + prompt_step]
                                                      for t in (text.embedding, text.tokens, text.mask))))
                       for first in range(0, prompts, prompt_step)], dim=1)
            for channel in range(0, pieces.shape[0], channel_step)])

    def _run_batch(self, pieces: torch.Tensor, text: TextFeatures) -> torch.Tensor:
        """``(channels, samples)`` -> ``(channels, prompts, samples)`` in one network call."""
        channels, length = pieces.shape
        padded = torch.nn.functional.pad(pieces, (0, max(0, self.model.config.n_fft - length)))
        batch_text = TextFeatures(*(torch.cat([t] * channels) for t in (text.embedding, text.tokens, text.mask)))
        waveforms = self.model(padded.to(self.device, torch.float32), batch_text)["waveforms"]
        return waveforms[..., :length].float().cpu()


class SeparationStream:
    """Separation of consecutive ``(channels, n)`` input blocks at ``sample_rate``: :meth:`push` each block, then
    :meth:`finish`; each returns the finished output as pieces ``(outputs, channels, m)`` (one per prompt, then the
    residual when asked for) at the input's rate, ``m`` at most about ``OUTPUT_PIECE_SECONDS``. Concatenated, the
    pieces equal the one-shot computation (resample the whole input to the model's rate, run cross-faded
    segments, resample back, fit to the input's length). Memory holds a few segments at the model's rate and one
    piece at the input's rate, whatever the duration."""

    def __init__(self, separator: Separator, sample_rate: int, channels: int, prompts: list[str], residual: bool,
                 segmentation: Segmentation, progress: Callable[[int, int], None] | None = None,
                 expected_samples: int | None = None):
        self.prompts, self.residual, self.sample_rate, self.channels = prompts, residual, sample_rate, channels
        with torch.inference_mode():
            text = separator.grounding.encode_text(prompts).to(separator.device)
        total = len(segmentation.starts(math.ceil((expected_samples or 0) * separator.sample_rate / sample_rate)))
        self._segments = SegmentedStream(lambda pieces: separator._run(pieces, text), segmentation,
                                         (lambda done: progress(min(done, total), total)) if progress else None)
        self._to_model = BlockResampler(sample_rate, separator.sample_rate, channels)
        self._from_model = BlockResampler(separator.sample_rate, sample_rate, channels * len(prompts))
        self._input = np.zeros((channels, 0), np.float32)  # input not yet matched by output (for the residual)
        self._output = np.zeros((len(prompts), channels, 0), np.float32)  # output ahead of the input seen so far
        self._piece = max(1, round(OUTPUT_PIECE_SECONDS * separator.sample_rate))  # model-rate samples per piece
        self.samples = 0  # input samples pushed, per channel
        self.peak = 0.0

    @property
    def silent_input(self) -> bool:
        return self.samples > 0 and peak_db(np.array([self.peak])) < SILENCE_PEAK_DB

    def push(self, block: np.ndarray) -> Iterator[np.ndarray]:
        """``(channels, n)`` float32 -> the output pieces ``(outputs, channels, m)`` it finishes (often none).
        The network runs now; the pieces are resampled as they are iterated, so iterate them before the next
        call."""
        block = np.asarray(block, np.float32)
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise ValueError(f"expected ({self.channels}, samples), got {block.shape}")
        self.samples += block.shape[-1]
        self.peak = max(self.peak, float(np.abs(block).max()) if block.size else 0.0)
        self._input = np.concatenate([self._input, block], axis=-1)
        return self._pieces([self._segments.push(torch.from_numpy(self._to_model.push(block)))], last=False)

    def finish(self) -> Iterator[np.ndarray]:
        """The rest of the output as pieces (as :meth:`push`), padded or cut so that the whole output has the
        input's length."""
        if self.samples == 0:
            raise BisepError("no audio samples to separate")
        if self.silent_input:
            warnings.warn("the input is silent; the outputs are silent too", stacklevel=3)
        flushed = self._to_model.push(np.zeros((self.channels, 0), np.float32), last=True)
        early = self._segments.push(torch.from_numpy(flushed))
        return self._pieces([early, self._segments.finish()], last=True)

    def _pieces(self, outputs: list[torch.Tensor], last: bool) -> Iterator[np.ndarray]:
        """Model-rate ``(channels, prompts, k)`` outputs, in order -> non-empty input-rate pieces, resampled
        ``self._piece`` model-rate samples at a time; ``last`` flushes the resampler and ends the output."""
        pieces = [output[..., start:start + self._piece] for output in outputs if output.shape[1]
                  for start in range(0, output.shape[-1], self._piece)]
        if last and not pieces:  # the resampler must still be flushed and the length fitted to the input's
            pieces = [torch.zeros(self.channels, len(self.prompts), 0)]
        for index, piece in enumerate(pieces):
            finished = self._from_segments(piece, last=last and index == len(pieces) - 1)
            if finished.shape[-1]:
                yield finished

    def _from_segments(self, outputs: torch.Tensor, last: bool) -> np.ndarray:
        """Model-rate ``(channels, prompts, k)`` -> input-rate output, as far as the input pushed so far goes."""
        prompts, channels = len(self.prompts), self.channels
        flat = outputs.numpy().transpose(1, 0, 2).reshape(prompts * channels, -1)
        back = self._from_model.push(flat, last=last).reshape(prompts, channels, -1)
        self._output = np.concatenate([self._output, back], axis=-1)
        if last:  # the output's length is the input's: pad a short end (soxr's extra samples are cut below)
            missing = self._input.shape[-1] - self._output.shape[-1]
            self._output = np.pad(self._output, [(0, 0), (0, 0), (0, max(0, missing))])
        count = min(self._output.shape[-1], self._input.shape[-1])
        estimates, self._output = self._output[..., :count], self._output[..., count:]
        matched, self._input = self._input[:, :count], self._input[:, count:]
        if not self.residual:
            return np.ascontiguousarray(estimates, np.float32)
        return np.concatenate([estimates, (matched - estimates.sum(axis=0))[None]]).astype(np.float32, copy=False)


def _recorded_grounding(folder: Path, meta: dict) -> str:
    """The grounding model a folder names: ``grounding_folder`` (a sub-folder, as ``bisep import`` writes a
    converted LAION-CLAP) or the ``grounding`` spec it was trained with."""
    provenance = meta.get("provenance", {})
    if provenance.get("grounding_folder"):
        inside = (folder / str(provenance["grounding_folder"])).resolve()
        if not inside.is_relative_to(folder.resolve()):
            raise BisepError(f"{folder}: provenance.grounding_folder {provenance['grounding_folder']!r} points "
                             "outside the model folder")
        return str(inside)
    return provenance.get("grounding", "builtin")


def _check_tensors(folder: Path, model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Refuse weights that do not fit the model built from the config, naming the first tensor that differs."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        detail = (f"missing tensor {missing[0]!r}" if missing else f"unexpected tensor {unexpected[0]!r}") + \
            f" ({len(missing)} missing, {len(unexpected)} unexpected)"
        raise BisepError(f"{folder}: weights do not fit the config: {detail}")
    for key, value in expected.items():
        if tuple(tensors[key].shape) != tuple(value.shape):
            raise BisepError(f"{folder}: weights do not fit the config: tensor {key!r} has shape "
                             f"{tuple(tensors[key].shape)}, the config gives {tuple(value.shape)}")
