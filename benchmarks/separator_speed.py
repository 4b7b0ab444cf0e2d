"""Separator speed on the CPU: shared prompt-independent work + batched prompts against the naive loop that
runs the whole network once per prompt (same weights, same inputs, measured in one run), and training step
time per mode.

    .venv/bin/python benchmarks/separator_speed.py --preset configs/builtin/weak.yaml [--corpus DIR] [--prompts 3]
        [--seconds 4] [--steps 5]

The sharing comparison uses random weights and random text features of the preset's widths (no grounding
model needed); the step times need a corpus and the preset's grounding model.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from timing import median_seconds

from bisep.config import load_config
from bisep.grounding.base import TextFeatures
from bisep.separator.model import TextQueriedSeparator
from bisep.train.config import TrainConfig


def sharing(config: TrainConfig, prompts: int, seconds: float, repeats: int) -> tuple[float, float, float]:
    torch.manual_seed(0)
    model = TextQueriedSeparator(config.model).eval()
    mixture = torch.randn(1, round(seconds * config.model.sample_rate)) * 0.1
    text = TextFeatures(torch.nn.functional.normalize(torch.randn(prompts, config.model.embedding_dim), dim=-1),
                        torch.randn(prompts, 12, config.model.token_dim), torch.ones(prompts, 12, dtype=torch.bool))

    @torch.inference_mode()
    def shared():
        return model(mixture, text)["waveforms"]

    @torch.inference_mode()
    def naive():
        return torch.cat([model(mixture, TextFeatures(text.embedding[i:i + 1], text.tokens[i:i + 1],
                                                      text.mask[i:i + 1]))["waveforms"] for i in range(prompts)], 1)

    difference = float((shared() - naive()).abs().max())
    return median_seconds(shared, repeats), median_seconds(naive, repeats), difference


def step_times(config: TrainConfig, corpus: str, steps: int) -> dict[str, float]:
    from dataclasses import replace

    from bisep.train.trainer import Trainer

    result = {}
    for mode in ("unsupervised", "weak", "supervised", "semi"):
        run = replace(config, mode=mode, out=f"/tmp/bisep-step-benchmark-{mode}",
                      data=replace(config.data, corpus=corpus, items_per_epoch=None))
        trainer = Trainer(run, log=lambda *_: None)
        trainer.run(max_steps=1)
        started = time.perf_counter()
        trainer.run(max_steps=1 + steps)
        result[mode] = (time.perf_counter() - started) / steps
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="configs/builtin/weak.yaml")
    parser.add_argument("--corpus")
    parser.add_argument("--prompts", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(TrainConfig, args.preset)
    shared, naive, difference = sharing(config, args.prompts, args.seconds, args.repeats)
    print(f"## Separator speed, {args.preset} ({time.strftime('%Y-%m-%d')})\n")
    print(f"Command: `.venv/bin/python benchmarks/separator_speed.py --preset {args.preset}"
          f"{' --corpus ' + args.corpus if args.corpus else ''} --prompts {args.prompts} --seconds {args.seconds}`  ")
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads; "
          f"{sum(p.numel() for p in TextQueriedSeparator(config.model).parameters()) / 1e6:.2f} M parameters\n")
    print(f"| inference, 1 mixture of {args.seconds:g} s, {args.prompts} prompts | seconds |")
    print("| --- | --- |")
    print(f"| naive loop, whole network per prompt (baseline) | {naive:.3f} |")
    print(f"| shared encoder + batched prompts | {shared:.3f} |")
    print(f"\nSpeed-up {naive / shared:.2f}x; outputs equal within {difference:.1e} (max abs difference).")
    if args.corpus:
        times = step_times(config, args.corpus, args.steps)
        print(f"\n| training step, batch {config.optim.batch_size} | seconds per step |")
        print("| --- | --- |")
        for mode, seconds in times.items():
            print(f"| {mode} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
