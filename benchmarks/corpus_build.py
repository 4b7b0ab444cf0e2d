"""Corpus build speed: `--size small` with all cores against one process (the baseline), same seed.

    .venv/bin/python benchmarks/corpus_build.py [--size small] [--jobs 2]

Prints a Markdown section for BENCHMARK.md: wall time, clips per second, peak memory of the largest process.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def build(out: Path, size: str, jobs: int) -> tuple[float, float]:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bisep.cli", "corpus", "build", "--out", str(out), "--size", size,
                    "--seed", "0", "--jobs", str(jobs)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def digest(folder: Path) -> str:
    total = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            total.update(path.read_bytes())
    return total.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="small")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        parallel, serial = Path(temporary) / "parallel", Path(temporary) / "serial"
        parallel_seconds, parallel_rss = build(parallel, args.size, args.jobs)
        serial_seconds, _ = build(serial, args.size, 1)
        import json

        stats = json.loads((parallel / "manifest.json").read_text())["stats"]
        clips = sum(split["clips"] for split in stats.values())
        same = digest(parallel) == digest(serial)
    print(f"## Corpus build, --size {args.size} ({time.strftime('%Y-%m-%d')})\n")
    print(f"Command: `.venv/bin/python benchmarks/corpus_build.py --size {args.size} --jobs {args.jobs}`  ")
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}\n")
    print("| build | wall time (s) | clips/s | peak RSS of one process (MB) |")
    print("| --- | --- | --- | --- |")
    print(f"| --jobs {args.jobs} | {parallel_seconds:.1f} | {clips / parallel_seconds:.0f} | {parallel_rss:.0f} |")
    print(f"| --jobs 1 (baseline) | {serial_seconds:.1f} | {clips / serial_seconds:.0f} | |")
    per_split = ", ".join(f"{name} {split['clips']}" for name, split in stats.items())
    print(f"\n{clips} clips ({per_split}); "
          f"speed-up {serial_seconds / parallel_seconds:.2f}x; byte-identical outputs for both job counts: {same}.")


if __name__ == "__main__":
    main()
