"""Running a separator on audio of any length: overlapping segments, cross-faded and summed back together.

A segment of ``segment`` samples starts every ``hop`` samples, and the last one ends exactly at the end of the
input (so no segment is padded with silence the network never saw in training). Each segment's output is
weighted by a window that rises linearly over the overlap, holds 1, and falls again; the weighted sum is divided
by the summed weights, so an identity model gives back its input exactly and seams are inaudible.

:class:`SegmentedStream` takes the input block by block and returns each output sample as soon as no later
segment can touch it, so memory is bounded by the segment length, not the input's duration;
:func:`apply_segmented` is the same computation on a whole waveform. Channels run as one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

# ``(channels, samples)`` -> ``(channels, prompts, samples)``: the network on one segment of every channel
SegmentModel = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Segmentation:
    """Segments of ``segment`` samples every ``hop`` samples (``hop <= segment``)."""

    segment: int
    hop: int

    @classmethod
    def from_seconds(cls, sample_rate: int, segment_seconds: float, overlap: float,
                     minimum: int = 1) -> "Segmentation":
        """``overlap`` in [0, 1) of a segment; ``minimum`` samples at least (a network's STFT window)."""
        segment = max(round(segment_seconds * sample_rate), minimum)
        return cls(segment, max(1, round(segment * (1 - overlap))))

    def starts(self, total: int) -> list[int]:
        """Where the segments of a ``total``-sample input start (one segment when it fits)."""
        if total <= self.segment:
            return [0]
        return list(range(0, total - self.segment, self.hop)) + [total - self.segment]

    def window(self, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
        """``(segment,)``: linear fades over the overlap, never zero (the first and last samples keep a weight)."""
        window = torch.ones(self.segment, dtype=dtype, device=device)
        fade = self.segment - self.hop
        if fade:
            ramp = (torch.arange(fade, dtype=dtype, device=device) + 1) / (fade + 1)
            window[:fade] = ramp
            window[-fade:] = ramp.flip(0)
        return window


class SegmentedStream:
    """Feed ``(channels, n)`` blocks with :meth:`push`, then call :meth:`finish`; each call returns the output
    samples that are final, ``(channels, prompts, m)``, in order (``(channels, 0, 0)`` before the first
    segment has run). Holds at most about two segments of input and
    output, whatever the total length."""

    def __init__(self, model: SegmentModel, segmentation: Segmentation,
                 progress: Callable[[int], None] | None = None):
        self.model = model
        self.segmentation = segmentation
        self.progress = progress
        self.segments_run = 0
        self._input: torch.Tensor | None = None  # (channels, buffered): input from sample _input_start on
        self._input_start = 0
        self._total = 0  # samples pushed so far
        self._next_start = 0  # the next regular segment's start
        self._sum: torch.Tensor | None = None  # (channels, prompts, pending): weighted outputs from _emitted on
        self._weight: torch.Tensor | None = None  # (pending,)
        self._emitted = 0
        self._finished = False

    def push(self, block: torch.Tensor) -> torch.Tensor:
        """Add ``(channels, n)`` input samples; returns the output samples that no later segment changes."""
        if self._finished:
            raise RuntimeError("push after finish")
        self._input = block if self._input is None else torch.cat([self._input, block], dim=-1)
        self._total += block.shape[-1]
        segment = self.segmentation.segment
        # a regular segment runs once input continues past it: only then is it certain not to be the last one
        while self._total > self._next_start + segment:
            self._add(self._next_start, self._slice(self._next_start, segment))
            self._next_start += self.segmentation.hop
        # later segments start at the next regular start or at (final total - segment) >= (total - segment)
        ready = min(self._next_start, self._total - segment)
        self._drop_input_before(ready)
        return self._emit(ready)

    def finish(self) -> torch.Tensor:
        """Run the last segment (ending at the input's end) and return every output sample not yet returned."""
        if self._finished:
            raise RuntimeError("finish called twice")
        self._finished = True
        if self._input is None:
            raise ValueError("no input was pushed")
        segment = self.segmentation.segment
        if self._total <= segment:  # one segment holds everything: no window, no weights
            self._count()
            return self.model(self._input)[..., :self._total]
        start = self._total - segment
        self._add(start, self._slice(start, segment))
        return self._emit(self._total)

    def _slice(self, start: int, length: int) -> torch.Tensor:
        offset = start - self._input_start
        return self._input[:, offset:offset + length]

    def _add(self, start: int, piece: torch.Tensor) -> None:
        """Run the model on ``piece`` (input from ``start``) and add its windowed output to the sums."""
        output = self.model(piece)
        window = self.segmentation.window(output.dtype, output.device)
        end = start + piece.shape[-1]
        if self._sum is None:
            self._sum = output.new_zeros(*output.shape[:-1], 0)
            self._weight = output.new_zeros(0)
        grow = end - self._emitted - self._sum.shape[-1]
        if grow > 0:
            self._sum = torch.cat([self._sum, self._sum.new_zeros(*self._sum.shape[:-1], grow)], dim=-1)
            self._weight = torch.cat([self._weight, self._weight.new_zeros(grow)])
        offset = start - self._emitted
        self._sum[..., offset:offset + piece.shape[-1]] += output * window
        self._weight[offset:offset + piece.shape[-1]] += window
        self._count()

    def _emit(self, until: int) -> torch.Tensor:
        count = max(0, until - self._emitted)
        if self._sum is None:  # no segment has run yet, so the number of prompts is not known either
            return torch.zeros(self._input.shape[0], 0, 0)
        done = self._sum[..., :count] / self._weight[:count].clamp_min(1e-8)
        self._sum, self._weight = self._sum[..., count:], self._weight[count:]
        self._emitted += count
        return done

    def _drop_input_before(self, position: int) -> None:
        drop = max(0, position - self._input_start)
        if drop:
            self._input = self._input[:, drop:]
            self._input_start += drop

    def _count(self) -> None:
        self.segments_run += 1
        if self.progress is not None:
            self.progress(self.segments_run)


def apply_segmented(model: SegmentModel, waveform: torch.Tensor, segmentation: Segmentation,
                    progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """``(channels, samples)`` -> ``(channels, prompts, samples)`` by cross-faded segments;
    ``progress(done, total)`` after each segment."""
    total = len(segmentation.starts(waveform.shape[-1]))
    stream = SegmentedStream(model, segmentation, (lambda done: progress(done, total)) if progress else None)
    pieces = [stream.push(waveform), stream.finish()]
    return torch.cat([piece for piece in pieces if piece.shape[1]], dim=-1)
