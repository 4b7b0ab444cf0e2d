import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bisep.cli import run

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_bisep_serve_answers_on_loopback_and_stops_cleanly_on_ctrl_c(tmp_path, capsys):
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    server = subprocess.Popen([sys.executable, "-m", "bisep.cli", "serve", "--model", "unittest", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    try:
        banner = server.stdout.readline()
        assert banner.startswith("bisep serve: model unittest; open http://127.0.0.1:") and str(port) in banner
        deadline = time.monotonic() + 30
        while True:
            try:
                info = httpx.get(f"http://127.0.0.1:{port}/api/info", timeout=5)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.1)
        assert info.json()["model"] == "unittest"
        assert len(list(tmp_path.glob("bisep-serve-*"))) == 1

        assert run(["serve", "--model", "unittest", "--port", str(port)]) == 2  # the port is taken
        refusal = capsys.readouterr().err
        assert refusal.startswith("bisep: error: cannot listen on 127.0.0.1:") and "--port" in refusal
    finally:
        server.send_signal(signal.SIGINT)
        output, errors = server.communicate(timeout=30)
    assert server.returncode == 0, errors
    assert output.strip().endswith("bisep serve: stopped") and "Traceback" not in errors
    assert not list(tmp_path.glob("bisep-serve-*"))  # the work folder went with the server


def test_sigterm_stops_a_running_job_promptly_and_says_stopped(tmp_path):
    """Issue #23: after SIGTERM the server waited ~30 s for the running separation and printed nothing."""
    import io

    import numpy as np
    import soundfile

    port = free_port()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    server = subprocess.Popen([sys.executable, "-m", "bisep.cli", "serve", "--model", "unittest", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    try:
        server.stdout.readline()
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/info", timeout=5)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.1)
        long = io.BytesIO()
        soundfile.write(long, np.random.default_rng(0).uniform(-0.3, 0.3, 16000 * 400).astype(np.float32), 16000,
                        format="FLAC")
        accepted = httpx.post(f"http://127.0.0.1:{port}/api/separate", data={"prompts": ["x"]},
                              files={"file": ("long.flac", long.getvalue(), "audio/flac")}, timeout=60)
        job = accepted.json()["id"]
        while httpx.get(f"http://127.0.0.1:{port}/api/jobs/{job}").json()["state"] != "running":
            time.sleep(0.1)
        stopping = time.monotonic()
        server.send_signal(signal.SIGTERM)
        output, errors = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert time.monotonic() - stopping < 15
    assert output.strip().endswith("bisep serve: stopped") and "Traceback" not in errors
    assert not list(tmp_path.glob("bisep-serve-*"))
