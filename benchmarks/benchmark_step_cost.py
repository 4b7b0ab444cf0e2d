"""What one optimiser step and one validation of each `bisep benchmark` run cost, and so what a budget costs.

Builds each run exactly as `bisep benchmark` would (its preset, the budget's batch sizing) and times repeated
optimiser steps on real corpus batches (median after warm-up) and one validation pass, then prints the
predicted wall time of each budget (training + validations; evaluation and the oracles come on top).

    python benchmarks/benchmark_step_cost.py --corpus corpus/small --grounding snapshots/grounding-realistic \
        [--steps 12] [--threads 2] [--budget default]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from bisep.benchmark import BUDGETS, RUNS, BenchmarkPlan, run_config


def step_seconds(trainer, steps: int) -> float:
    loaders = trainer._loaders()
    iterators = {name: iter(loader) for name, loader in loaders.items()}
    times = []
    for index in range(steps + 2):  # two warm-up steps
        micro = [{name: next(iterator) for name, iterator in iterators.items()}]
        started = time.perf_counter()
        trainer.train_step(micro)
        if index >= 2:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    from bisep.train.trainer import Trainer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--grounding", default="builtin")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", default="unsupervised,weak,supervised,semi,weak_no_contrastive")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    print(f"machine: {platform.machine()}, {arguments.threads} threads, torch {torch.__version__}; corpus "
          f"{arguments.corpus}, grounding {arguments.grounding}")
    costs = {}
    with tempfile.TemporaryDirectory() as folder:
        plan = BenchmarkPlan.from_budget("default", Path(folder))
        print("| run | batch | seconds a step | seconds a validation |\n| --- | --- | --- | --- |")
        for name in arguments.runs.split(","):
            config = run_config(plan, name, 0, arguments.corpus, arguments.grounding)
            trainer = Trainer(config, log=lambda *_: None)
            step = step_seconds(trainer, arguments.steps)
            started = time.perf_counter()
            trainer.validate()
            validation = time.perf_counter() - started
            if trainer.writer is not None:
                trainer.writer.close()  # before the temporary run folder goes
            costs[name] = (step, validation)
            print(f"| {name} | {config.optim.batch_size} | {step:.2f} | {validation:.1f} |", flush=True)
    costs.setdefault("weak_no_consistency", costs.get("weak", (0.0, 0.0)))  # same forward and backward as weak
    for budget_name in BUDGETS:
        budget = BenchmarkPlan.from_budget(budget_name, Path("unused"))
        validations = budget.steps // budget.validate_every + 1  # the trainer also validates at step 0
        total = sum(budget.seeds_of(name) * (budget.steps * step + validations * validation)
                    for name, (step, validation) in costs.items() if name in RUNS)
        print(f"budget {budget_name}: {budget.steps} steps, validation every {budget.validate_every}; predicted "
              f"training + validation {total / 60:.1f} min (evaluation and oracles on top)")


if __name__ == "__main__":
    sys.exit(main())
