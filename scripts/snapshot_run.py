"""Copy a training run's resumable state into the repository and commit it, so a later session continues the run.

A session's background training dies with the session; ``runs/`` is not versioned. Every hour this copies the
run's ``checkpoints/latest`` (config, weights, optimiser state) and its ``history.jsonl`` into
``snapshots/<run name>/`` (replaced atomically) and commits exactly those paths. Per-epoch weights stay out (they
would add their size to the repository's history at every snapshot); score them for the curves while they exist
(``benchmarks/validation_curves.py`` keeps its scores in docs/figures).

    python scripts/snapshot_run.py runs/builtin-long [--every-minutes 60] [--once]

To continue in a new session: ``python scripts/snapshot_run.py --restore snapshots/builtin-long runs/builtin-long``,
then ``bisep train configs/builtin/long.yaml --resume``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
KEPT = ("config.json", "model.safetensors", "state.pt")


def snapshot(run: Path, out: Path) -> bool:
    """Copy the resumable state of ``run`` into ``out``; False when the run has no checkpoint yet."""
    latest = run / "checkpoints" / "latest"
    if not (latest / "state.pt").is_file():
        return False
    partial = out.parent / f".{out.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "latest").mkdir(parents=True)
    for name in KEPT:
        shutil.copy2(latest / name, partial / "latest" / name)
    for name in ("history.jsonl", "summary.json"):
        if (run / name).is_file():
            shutil.copy2(run / name, partial / name)
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return True


def restore(snapshot_folder: Path, run: Path) -> None:
    """Put a snapshot back where ``bisep train --resume`` looks for it."""
    target = run / "checkpoints" / "latest"
    target.mkdir(parents=True, exist_ok=True)
    for name in KEPT:
        shutil.copy2(snapshot_folder / "latest" / name, target / name)
    if (snapshot_folder / "history.jsonl").is_file() and not (run / "history.jsonl").exists():
        shutil.copy2(snapshot_folder / "history.jsonl", run / "history.jsonl")


def commit(out: Path) -> None:
    relative = out.resolve().relative_to(REPOSITORY)
    subprocess.run(["git", "add", "--all", "--", str(relative)], cwd=REPOSITORY, check=True)
    config = out / "latest" / "config.json"
    step = ""
    if config.is_file():  # the resumable state's step (history.jsonl runs ahead of it)
        step = f" at step {json.loads(config.read_text()).get('provenance', {}).get('global_step')}"
    subprocess.run(["git", "commit", "--quiet", "-m", f"snapshot of the {out.name} training run{step}", "--",
                    str(relative)], cwd=REPOSITORY, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("target", type=Path, nargs="?")
    parser.add_argument("--every-minutes", type=float, default=60.0)
    parser.add_argument("--once", action="store_true")
    parser.add_argument("--restore", action="store_true", help="RUN is a snapshot folder, TARGET the run to fill.")
    arguments = parser.parse_args()
    if arguments.restore:
        restore(arguments.run, arguments.target)
        return
    out = arguments.target or REPOSITORY / "snapshots" / arguments.run.name
    while True:
        if snapshot(arguments.run, out):
            commit(out)
            print(f"{time.strftime('%H:%M:%S')} snapshot of {arguments.run} committed", flush=True)
        if arguments.once:
            return
        time.sleep(arguments.every_minutes * 60)


if __name__ == "__main__":
    sys.exit(main())
