"""Speed and memory of separating with a shipped model: real-time factor for 1..N prompts on 60 s of audio, and the
peak RSS of `bisep separate` on a 30-minute file (run in a child process so the figure is its own).

    python benchmarks/separate_speed.py [--model builtin] [--seconds 60] [--prompts 3] [--long-minutes 30]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import median_seconds  # noqa: E402

PROMPTS = ["a violin plays", "a dog barks", "a man speaks", "rain falls", "a piano melody"]


def test_signal(seconds: float, rate: int = 44100, seed: int = 0) -> np.ndarray:
    """Stereo 44.1 kHz noise bursts and tones: a user's file, so resampling and channels are part of the cost."""
    rng = np.random.default_rng(seed)
    time_axis = np.arange(int(seconds * rate)) / rate
    tone = 0.2 * np.sin(2 * np.pi * 440 * time_axis) * (np.sin(2 * np.pi * 0.5 * time_axis) > 0)
    noise = 0.05 * rng.standard_normal(time_axis.shape)
    return np.stack([tone + noise, 0.8 * tone + noise]).astype(np.float32)


def peak_rss_of_separate(model: str, minutes: float, threads: int) -> tuple[float, float]:
    """Write a ``minutes`` long 16 kHz mono file and separate it in a child process; (peak RSS MB, seconds)."""
    import soundfile

    rate = 16000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "long.flac"
        with soundfile.SoundFile(path, "w", rate, 1, format="FLAC") as handle:
            for minute in range(int(np.ceil(minutes))):
                handle.write(test_signal(min(60.0, minutes * 60 - minute * 60), rate, seed=minute)[0])
        code = ("import resource, sys; from bisep.cli import run; status = run(sys.argv[1:]); "
                "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(status)")
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", code, "separate", str(path), "-q", PROMPTS[0], "-o",
                                 str(Path(folder) / "out"), "--model", model, "--device", "cpu"],
                                capture_output=True, text=True,
                                env={**__import__("os").environ, "OMP_NUM_THREADS": str(threads)})
        seconds = time.perf_counter() - started
        if result.returncode:
            raise SystemExit(f"bisep separate failed: {result.stderr.strip()}")
        peak_kb = int(next(line for line in result.stdout.splitlines() if line.startswith("PEAK")).split()[1])
        return peak_kb / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--prompts", type=int, default=3)
    parser.add_argument("--long-minutes", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    from bisep.separator.api import Separator

    separator = Separator.from_pretrained(arguments.model, device="cpu")
    audio = test_signal(arguments.seconds)
    print(f"machine: {platform.machine()}, {arguments.threads} threads, torch {torch.__version__}; model "
          f"{arguments.model}; input {arguments.seconds:.0f} s stereo 44.1 kHz (each channel separated)")
    print("| prompts | seconds | real-time factor | marginal seconds per extra prompt |")
    print("| --- | --- | --- | --- |")
    previous = None
    for count in range(1, arguments.prompts + 1):
        seconds = median_seconds(lambda: separator.separate(audio, PROMPTS[:count], sample_rate=44100),
                                 repeats=arguments.repeats)
        marginal = "" if previous is None else f"{seconds - previous:.2f}"
        print(f"| {count} | {seconds:.2f} | {seconds / arguments.seconds:.4f} | {marginal} |")
        previous = seconds
    mono = audio[:1]
    seconds = median_seconds(lambda: separator.separate(mono, PROMPTS[:1], sample_rate=44100),
                             repeats=arguments.repeats)
    print(f"mono, 1 prompt: {seconds:.2f} s, real-time factor {seconds / arguments.seconds:.4f}")
    if arguments.long_minutes > 0:
        peak, seconds = peak_rss_of_separate(arguments.model, arguments.long_minutes, arguments.threads)
        print(f"`bisep separate` on a {arguments.long_minutes:.0f}-minute 16 kHz mono file, 1 prompt: peak RSS "
              f"{peak:.0f} MB, {seconds:.0f} s wall (model load included)")


if __name__ == "__main__":
    main()
