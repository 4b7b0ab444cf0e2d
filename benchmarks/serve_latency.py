"""`bisep serve` latency: time from the upload of a 30 s file with 2 prompts to its finished result, over HTTP.

    .venv/bin/python benchmarks/serve_latency.py [--model NAME_OR_FOLDER] [--preset configs/builtin/weak.yaml]
        [--seconds 30] [--prompts 2] [--repeats 3]

Runs the real server (uvicorn) on a free loopback port, uploads a mixture made of the shipped examples laid end to
end, polls the job until it is done, then downloads every output and spectrogram as the page does. Without
``--model`` the separator has the preset's architecture with random weights and the shipped grounding model:
weights do not change the speed. Prints a Markdown section for BENCHMARK.md.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile
import torch


def random_model_folder(preset: str, folder: Path) -> Path:
    from bisep.config import load_config
    from bisep.model_folder import write_model_folder
    from bisep.separator.model import TextQueriedSeparator
    from bisep.train.config import TrainConfig

    config = load_config(TrainConfig, preset)
    torch.manual_seed(0)
    model = TextQueriedSeparator(config.model)
    return write_model_folder(folder, model, config.model, {"grounding": config.grounding})


def mixture_bytes(seconds: float) -> bytes:
    from bisep.examples import list_examples

    pieces = [soundfile.read(example.mixture, dtype="float32")[0] for example in list_examples()]
    audio = np.concatenate(pieces * int(np.ceil(seconds / (len(pieces) * 4.0))))[: round(seconds * 16000)]
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def main() -> None:
    import httpx
    import uvicorn

    from bisep.separator.api import Separator
    from bisep.serve.app import Settings, create_app

    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--preset", default="configs/builtin/weak.yaml")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        model = args.model or str(random_model_folder(args.preset, Path(scratch) / "model"))
        load_started = time.perf_counter()
        separator = Separator.from_pretrained(model, device="cpu")
        load_seconds = time.perf_counter() - load_started
        app = create_app(Settings(model=model), separator)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        content = mixture_bytes(args.seconds)
        prompts = ["a violin plays", "a man is talking", "rain falling", "a dog barks"][: args.prompts]
        totals, separations = [], []
        with httpx.Client(base_url=base, timeout=600) as client:
            for _ in range(args.repeats + 1):  # the first run warms up
                started = time.perf_counter()
                job = client.post("/api/separate", files={"file": ("mix.wav", content, "audio/wav")},
                                  data={"prompts": prompts}).json()
                while (status := client.get(f"/api/jobs/{job['id']}").json())["state"] not in ("done", "failed"):
                    time.sleep(0.1)
                if status["state"] == "failed":
                    raise SystemExit(status["error"])
                done = time.perf_counter()
                result = status["result"]
                for track in (result["input"], *result["tracks"], result["residual"]):
                    client.get(track["audio_url"]).raise_for_status()
                    client.get(track["spectrogram_url"]).raise_for_status()
                separations.append(done - started)
                totals.append(time.perf_counter() - started)
        server.should_exit = True
        thread.join(10)

    print(f"## `bisep serve` latency ({time.strftime('%Y-%m-%d')})\n")
    print(f"Command: `.venv/bin/python benchmarks/serve_latency.py{' --model ' + args.model if args.model else ''}"
          f" --seconds {args.seconds:g} --prompts {args.prompts} --repeats {args.repeats}`  ")
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} at the end; model "
          f"{'random weights, ' + args.preset if not args.model else args.model}; model load {load_seconds:.1f} s\n")
    print(f"| {args.seconds:g} s upload (16 kHz mono WAV), {args.prompts} prompts, median of {args.repeats} | seconds |")
    print("| --- | --- |")
    print(f"| upload to finished result (separation, outputs, spectrograms) | {statistics.median(separations[1:]):.2f} |")
    print(f"| ... plus downloading every output and spectrogram | {statistics.median(totals[1:]):.2f} |")


if __name__ == "__main__":
    main()
