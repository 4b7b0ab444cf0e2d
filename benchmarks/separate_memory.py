"""Peak memory of separation on long inputs (issue #23): `bisep separate` on a generated 60-minute 48 kHz stereo
file with 4 prompts and --residual, and the server's separation of the largest uploads its documented limits
admit, each in a child process whose peak RSS comes from ``getrusage(RUSAGE_CHILDREN)``. (Wall time by thread
setting: ``separate_threads.py``.)

    python benchmarks/separate_memory.py [--minutes 60] [--work /tmp/bench] [--skip cli]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROMPTS = ["a violin plays", "a dog barks", "a man speaks", "rain falls", "a piano melody", "drums",
           "birds sing", "a car passes"]
MEASURE = ("import resource, subprocess, sys; status = subprocess.run(sys.argv[1:]).returncode; "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, status)")


def write_long_file(path: Path, seconds: float, rate: int, channels: int, file_format: str = "FLAC") -> Path:
    """Tones switching on and off over low noise, written block by block (the generator's memory stays small)."""
    import soundfile

    rng = np.random.default_rng(0)
    block = rate * 10
    with soundfile.SoundFile(path, "w", rate, channels, "PCM_16", format=file_format) as out:
        for start in range(0, int(seconds * rate), block):
            count = min(block, int(seconds * rate) - start)
            time_axis = (start + np.arange(count)) / rate
            tone = 0.2 * np.sin(2 * np.pi * 440 * time_axis) * (np.sin(2 * np.pi * 0.5 * time_axis) > 0)
            out.write(np.stack([tone * (1 - 0.1 * channel) + 0.02 * rng.standard_normal(count)
                                for channel in range(channels)], axis=1))
    return path


def measured(command: list[str]) -> tuple[float, float]:
    """Run ``command`` in a fresh child (so the peak is its own); returns (peak RSS in MB, seconds)."""
    started = time.perf_counter()
    output = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True)
    peak_kb, status = output.stdout.split()[-2:]
    if status != "0":
        raise SystemExit(f"{' '.join(command)} failed:\n{output.stderr}")
    return int(peak_kb) / 1024, time.perf_counter() - started


SERVE_CHILD = """
import sys
from pathlib import Path
from bisep.separator.api import Separator
from bisep.serve.app import Settings
from bisep.serve.jobs import Job
from bisep.serve.pipeline import run_separation
source, folder, count = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
settings = Settings()
job = Job(id="benchmark", folder=folder, request={"audio": source, "display_name": source.name,
                                                  "prompts": %r[:count]})
run_separation(job, Separator.from_pretrained("builtin", device="cpu"), settings.limits)
""" % (PROMPTS,)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--work", type=Path, help="Folder for the generated files (default: a temporary one).")
    parser.add_argument("--skip", default="", help="Comma-separated cases to skip: cli, serve.")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    work = args.work or Path(tempfile.mkdtemp(prefix="bisep-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    bisep = [sys.executable, "-m", "bisep.cli"]
    results = {}
    if "cli" not in skip:
        long_file = work / f"long-{args.minutes:g}min-48k-stereo.flac"
        if not long_file.exists():
            write_long_file(long_file, args.minutes * 60, 48000, 2)
        peak, seconds = measured([*bisep, "separate", str(long_file), *sum((["-q", p] for p in PROMPTS[:4]), []),
                                  "--residual", "-o", str(work / "out-cli"), "--overwrite", "--jobs", "1"])
        results["cli"] = {"file": f"{args.minutes:g} min, 48 kHz, stereo, FLAC", "prompts": 4, "residual": True,
                          "peak_rss_mb": round(peak), "seconds": round(seconds, 1)}
        print(json.dumps(results["cli"]), flush=True)
    if "serve" not in skip:
        # the largest inputs the default limits admit: 600 s of 48 kHz stereo, or the same sample budget as
        # 8 channels at 192 kHz (37.5 s, resampled to 48 kHz), each with the 8 prompts a job may have
        for name, seconds, rate, channels in (("37.5 s, 192 kHz, 8 channels", 37.5, 192000, 8),
                                              ("600 s, 48 kHz, stereo", 600, 48000, 2)):
            upload = work / f"serve-{rate}-{channels}.flac"
            if not upload.exists():
                write_long_file(upload, seconds, rate, channels)
            folder = work / f"serve-out-{rate}-{channels}"
            folder.mkdir(exist_ok=True)
            peak, elapsed = measured([sys.executable, "-c", SERVE_CHILD, str(upload), str(folder), "8"])
            results[f"serve {name}"] = {"prompts": 8, "peak_rss_mb": round(peak), "seconds": round(elapsed, 1)}
            print(json.dumps({name: results[f"serve {name}"]}), flush=True)
    print(json.dumps({"load_average": os.getloadavg(), "cpus": os.cpu_count(), **results}, indent=1))


if __name__ == "__main__":
    main()
