"""Wall time of `bisep separate` by thread setting: the default against `--jobs 1` and `--jobs 2` (issue #23).

The default runs as many threads as other processes leave cores idle (measured over a quarter second), with
passive OpenMP waits; the input is a generated stereo 44.1 kHz file, separated with one prompt. The settings run
interleaved, each ``--repeats`` times, so a change in the machine's background load falls on all of them; each run is a fresh
process (model loading included, as a user sees it) and reports the threads it ran with and the load average
just before it started.

    python benchmarks/separate_threads.py [--minutes 10] [--repeats 2] [--work /tmp/bench]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from separate_memory import write_long_file  # noqa: E402

SETTINGS = {"default": [], "--jobs 1": ["--jobs", "1"], "--jobs 2": ["--jobs", "2"]}
CHILD = ("import sys, torch; from bisep.cli import run; status = run(sys.argv[1:]); "
         "print('THREADS', torch.get_num_threads()); sys.exit(status)")


def timed_separate(source: Path, out: Path, prompt: str, options: list[str]) -> dict:
    """One `bisep separate` in a fresh process, with no thread variables of our own in its environment;
    returns its wall seconds, the threads it used and the 1-minute load average before it started."""
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")}
    load = os.getloadavg()[0]
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", CHILD, "separate", str(source), "-q", prompt, "-o", str(out),
                             "--overwrite", *options], capture_output=True, text=True, env=environment)
    seconds = time.perf_counter() - started
    if result.returncode:
        raise SystemExit(f"bisep separate {' '.join(options)} failed:\n{result.stderr}")
    threads = int(next(line for line in result.stdout.splitlines() if line.startswith("THREADS")).split()[1])
    return {"seconds": round(seconds, 1), "threads": threads, "load_before": round(load, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--prompt", default="a violin plays")
    parser.add_argument("--work", type=Path, help="Folder for the generated file (default: a temporary one).")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bisep-threads-"))
    work.mkdir(parents=True, exist_ok=True)
    source = work / f"threads-{args.minutes:g}min-44k-stereo.flac"
    if not source.exists():
        write_long_file(source, args.minutes * 60, 44100, 2)
    runs = []
    for repeat in range(args.repeats):
        for name, options in SETTINGS.items():
            runs.append({"setting": name, "repeat": repeat + 1,
                         **timed_separate(source, work / "out-threads", args.prompt, options)})
            print(json.dumps(runs[-1]), flush=True)
    summary = {name: [run["seconds"] for run in runs if run["setting"] == name] for name in SETTINGS}
    print(json.dumps({"file": f"{args.minutes:g} min, 44.1 kHz, stereo, FLAC", "prompt": args.prompt,
                      "cpus": os.cpu_count(), "load_average_after": os.getloadavg(), "seconds": summary}, indent=1))


if __name__ == "__main__":
    main()
