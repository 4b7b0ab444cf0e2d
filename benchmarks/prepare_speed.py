"""Dataset preparation speed: `bisep data audiocaps` on synthetic downloads (44.1 kHz stereo 16-bit wav).

    .venv/bin/python benchmarks/prepare_speed.py [--clips 10000] [--seconds 1] [--jobs 2]

Times the first run (find, decode, resample to 16 kHz mono, write, parse captions, compositions) and a re-run
that finds every clip already converted. Prints a Markdown section for BENCHMARK.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

SOURCES = ["a man speaks", "a dog barks", "birds chirp", "a car passes by", "water runs", "a bell rings",
           "people applaud", "an engine idles", "rain falls", "a baby cries"]
SPLITS = {"train.csv": 0.8, "val.csv": 0.1, "test.csv": 0.1}


def make_downloads(folder: Path, clips: int, seconds: float) -> None:
    """AudioCaps-style CSVs and one wav per clip, in 100 subfolders as downloaders tend to leave them."""
    rng = np.random.default_rng(0)
    time_axis = np.arange(int(seconds * 44100)) / 44100
    rows = []
    for number in range(clips):
        youtube_id = f"bench{number:06d}"
        first, second = rng.choice(len(SOURCES), size=2, replace=False)
        rows.append([number, youtube_id, 30, f"{SOURCES[first].capitalize()} while {SOURCES[second]}"])
        tone = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * time_axis)
        path = folder / "audio" / f"{number % 100:02d}" / f"{youtube_id}_30.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, np.stack([tone, 0.5 * tone], axis=1), 44100, subtype="PCM_16")
    start = 0
    (folder / "csv").mkdir()
    for name, share in SPLITS.items():
        count = round(share * clips) if name != "test.csv" else clips - start
        with open(folder / "csv" / name, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["audiocap_id", "youtube_id", "start_time", "caption"])
            writer.writerows(rows[start:start + count])
        start += count


def prepare(folder: Path, jobs: int) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "bisep.cli", "data", "audiocaps", "--csv-dir", str(folder / "csv"), "--audio-dir",
         str(folder / "audio"), "--out", str(folder / "out"), "--jobs", str(jobs)],
        check=True, capture_output=True, text=True)
    return time.perf_counter() - started, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bisep-prepare-speed-") as temporary:
        folder = Path(temporary)
        make_downloads(folder, args.clips, args.seconds)
        load = os.getloadavg()[0]
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import bisep.cli, bisep.data.audiocaps"], check=True)
        startup_seconds = time.perf_counter() - started
        first_seconds, first_summary = prepare(folder, args.jobs)
        again_seconds, again_summary = prepare(folder, args.jobs)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"## Dataset preparation, {args.clips} clips of {args.seconds:g} s ({time.strftime('%Y-%m-%d')})\n")
    print(f"Command: `.venv/bin/python benchmarks/prepare_speed.py --clips {args.clips} --seconds {args.seconds:g} "
          f"--jobs {args.jobs}`  ")
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load average {load:.1f} when starting\n")
    print("Input: 44.1 kHz stereo 16-bit wav files named `<youtube_id>_<start>.wav` in 100 folders, AudioCaps "
          "CSVs with two-source captions. Output: 16 kHz mono 16-bit wav, annotations, splits, compositions.\n")
    print(f"| run (--jobs {args.jobs}) | wall time (s) | clips/s | peak RSS of one process (MB) |")
    print("| --- | --- | --- | --- |")
    print(f"| first run: convert all | {first_seconds:.1f} | {args.clips / first_seconds:.0f} | {peak_mb:.0f} |")
    print(f"| re-run: all already converted | {again_seconds:.1f} | {args.clips / again_seconds:.0f} | |")
    print(f"\nWall times include starting Python and importing bisep ({startup_seconds:.1f} s). Summaries:\n")
    print("```\n" + first_summary.strip() + "\n" + again_summary.strip().splitlines()[1] + "\n```")


if __name__ == "__main__":
    main()
