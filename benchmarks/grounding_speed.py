"""Grounding model speed: embedding 16 clips of 4 s (16 kHz) on the CPU, with and without gradients.

    .venv/bin/python benchmarks/grounding_speed.py [--grounding builtin] [--threads 2]

Prints a Markdown section for BENCHMARK.md (median of 10 runs after 2 warm-ups).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from timing import median_seconds

from bisep.grounding import load_grounding


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grounding", default="builtin")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = load_grounding(args.grounding)
    load_seconds = time.perf_counter() - started
    audio = torch.randn(16, 64000, generator=torch.Generator().manual_seed(0)) * 0.1

    def no_gradient():
        with torch.no_grad():
            model.encode_audio(audio, 16000)

    def with_gradient():
        waveform = audio.clone().requires_grad_(True)
        model.encode_audio(waveform, 16000).sum().backward()

    prompts = [f"a sound number {n} while something else happens" for n in range(16)]

    def text():
        model._text_cache.clear()
        model.encode_text(prompts)

    forward, backward, text_seconds = (median_seconds(task, warmups=2) for task in (no_gradient, with_gradient, text))
    print(f"## Grounding model speed, {args.grounding} ({time.strftime('%Y-%m-%d')})\n")
    print(f"Command: `.venv/bin/python benchmarks/grounding_speed.py --grounding {args.grounding} "
          f"--threads {args.threads}`  ")
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads\n")
    print("| what | seconds |")
    print("| --- | --- |")
    print(f"| load | {load_seconds:.2f} |")
    print(f"| encode_audio, 16 clips x 4 s, no gradient (bar: <= 0.5) | {forward:.3f} |")
    print(f"| encode_audio + backward to the waveform (the weak loss's path) | {backward:.3f} |")
    print(f"| encode_text, 16 new prompts (cache cleared) | {text_seconds:.3f} |")


if __name__ == "__main__":
    main()
