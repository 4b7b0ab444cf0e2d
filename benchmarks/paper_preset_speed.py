"""Paper-preset separation speed on this machine: one 8.19 s clip (16 kHz) with several prompts.

    python benchmarks/paper_preset_speed.py [--authors AUTHORS_CHECKOUT] [--prompts 3] [--repeats 3] [--threads 2]

Compares, with the same random weights and inputs, in one run:
- bisep: all prompts in one call, prompt-independent work shared (the encoder above the first conditioned level
  and those levels' skips' share of the up path), ``torch.inference_mode``;
- the naive loop: the same network called once per prompt (also in inference mode);
- with ``--authors``: the authors' network as their ``demo.py`` runs it, imported from your checkout of
  microsoft/BiModalAudioSeparation: one prompt per call under ``torch.no_grad``, the whole U-Net each time, with
  the STFT, mask and inverse STFT around it (bisep's STFT modules stand in for torchlibrosa's; their demo's
  spectrogram images are not drawn).
Text features are random (77 tokens, as LAION-CLAP pads prompts): no text tower is timed. Median of
``--repeats`` rounds after one warm-up; each round runs every variant once, so a machine shared with other jobs
slows all of them alike. The floating-point operations of each run (PyTorch's FLOP counter) show
how much of the work the prompts can share.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn


from bisep.grounding.base import TextFeatures
from bisep.importers.authors import PAPER_SEPARATOR, split_authors_state
from bisep.separator.model import TextQueriedSeparator

SAMPLES = 131070
CONTEXT = 77


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors", type=Path, help="your checkout of microsoft/BiModalAudioSeparation")
    parser.add_argument("--prompts", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = TextQueriedSeparator(PAPER_SEPARATOR)
    authors = None
    if args.authors is not None:
        from authors_equivalence import authors_masks, build_authors_network, randomize

        authors = build_authors_network(args.authors.resolve())
        state = randomize(authors, seed=0)
        model.load_state_dict(split_authors_state({k[len("module."):]: v for k, v in state.items()})[0])
    else:
        torch.manual_seed(0)
    model.eval()
    generator = torch.Generator().manual_seed(1)
    mixture = 0.1 * torch.randn(1, SAMPLES, generator=generator)
    embedding = nn.functional.normalize(torch.randn(args.prompts, PAPER_SEPARATOR.embedding_dim,
                                                    generator=generator), dim=-1)
    tokens = torch.randn(args.prompts, CONTEXT, PAPER_SEPARATOR.token_dim, generator=generator)
    mask = torch.ones(args.prompts, CONTEXT, dtype=torch.bool)
    text = TextFeatures(embedding, tokens, mask)

    @torch.inference_mode()
    def shared():
        return model(mixture, text)["waveforms"][0]

    @torch.inference_mode()
    def naive():
        return torch.cat([model(mixture, TextFeatures(embedding[i:i + 1], tokens[i:i + 1], mask[i:i + 1]))
                          ["waveforms"][0] for i in range(args.prompts)])

    @torch.no_grad()
    def authors_demo():
        """Their demo's path per prompt: STFT, log1p magnitude, net, mask x magnitude, mixture phase, iSTFT."""
        spectrogram = model.stft(mixture)[0]
        masks = authors_masks(authors, spectrogram.abs(), tokens, embedding)
        return model.istft(masks * spectrogram.abs() * torch.exp(1j * spectrogram.angle()), SAMPLES)

    results = {"shared": shared, "naive": naive}
    if authors is not None:
        results["authors"] = authors_demo
    outputs = {name: function() for name, function in results.items()}
    gigaflops = {name: counted_gigaflops(function) for name, function in results.items()}
    seconds = interleaved_median_seconds(results, args.repeats)
    clip = SAMPLES / PAPER_SEPARATOR.sample_rate
    machine = platform.processor() or platform.machine()
    print(f"## Paper preset, one {clip:.2f} s clip, {args.prompts} prompts ({machine}, {args.threads} threads, "
          f"torch {torch.__version__})\n")
    print("| run | seconds | real-time factor | speed-up vs naive | GFLOP | max abs difference to naive |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in results:
        difference = float((outputs[name] - outputs["naive"]).abs().max())
        print(f"| {name} | {seconds[name]:.2f} | {seconds[name] / clip:.2f} | {seconds['naive'] / seconds[name]:.2f}x "
              f"| {gigaflops[name]:.0f} | {difference:.2g} |")


def interleaved_median_seconds(functions: dict, repeats: int) -> dict[str, float]:
    for function in functions.values():
        function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            started = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def counted_gigaflops(function) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops() / 1e9


if __name__ == "__main__":
    main()
