"""Which training stream BatchNorm statistics should come from, for a semi run: the trainer's validation score
of one checkpoint with its running statistics recomputed from the natural mixtures only, the single-source
mixtures only, and both in equal shares (what ``Trainer.recalibrate_batch_norm`` does now). A validation list
only: this decided a design choice.

    python benchmarks/batch_norm_streams.py runs/benchmark/runs/semi-seed0 configs/builtin/semi.yaml \
        data.corpus=corpus/small
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="A run folder with checkpoints/best.")
    parser.add_argument("config", type=Path, help="The run's preset (mode semi).")
    parser.add_argument("overrides", nargs="*")
    arguments = parser.parse_args()
    from bisep.config import load_config
    from bisep.model_folder import read_model_folder
    from bisep.train.config import TrainConfig
    from bisep.train.trainer import Trainer

    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as scratch:
        config = load_config(TrainConfig, arguments.config, [f"out={scratch}", *arguments.overrides])
        if config.mode != "semi":
            raise SystemExit(f"{arguments.config}: mode {config.mode}, expected semi (two training streams)")
        trainer = Trainer(config, log=lambda *_: None)
        _, tensors = read_model_folder(arguments.run / "checkpoints" / "best")
        trainer.model.load_state_dict(tensors)
        streams = dict(trainer.datasets)
        print("| BatchNorm statistics from | valid SDRi | valid SI-SDRi |\n| --- | --- | --- |")
        for label, chosen in (("natural mixtures of mixtures", {"natural": streams["natural"]}),
                              ("single-source mixtures", {"single": streams["single"]}),
                              ("both, equal shares", streams)):
            trainer.datasets = chosen
            scores = trainer.validate()
            print(f"| {label} | {scores['sdri']:+.2f} | {scores['si_sdri']:+.2f} |", flush=True)
        if trainer.writer is not None:
            trainer.writer.close()


if __name__ == "__main__":
    main()
