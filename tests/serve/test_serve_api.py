import io
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile
from fastapi.testclient import TestClient

from bisep.errors import BisepError
from bisep.examples import list_examples
from bisep.separator.api import Separator
from bisep.serve.app import Settings, _check_port, create_app
from conftest import tone

LIMITS = dict(model="unittest", max_upload_mb=0.5, max_seconds=5.0, queue_size=3, max_prompts=4)


@pytest.fixture(scope="module")
def separator():
    return Separator.from_pretrained("unittest", device="cpu")


@pytest.fixture
def client(separator):
    with TestClient(create_app(Settings(**LIMITS), separator)) as test_client:
        yield test_client


def wav_bytes(seconds=1.0, rate=16000, channels=1):
    waveform = np.stack([tone(300 + 200 * channel, seconds, rate) for channel in range(channels)], axis=1)
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def submit(client, content, prompts=("a flute",), name="tone.wav"):
    return client.post("/api/separate", files={"file": (name, content, "audio/wav")}, data={"prompts": list(prompts)})


def wait_for(client, job_id, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/api/jobs/{job_id}").json()
        if status["state"] in ("done", "failed"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_page_info_and_openapi(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="separate-form"' in page.text
    assert client.get("/static/app.js").status_code == 200
    info = client.get("/api/info").json()
    assert info["model"] == "unittest" and info["max_upload_mb"] == 0.5 and info["max_prompts"] == 4
    schema = client.get("/api/openapi.json").json()
    assert {"/api/separate", "/api/jobs/{job_id}", "/api/examples"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 404  # the interactive docs would load scripts from a CDN


def test_upload_gives_every_prompt_the_residual_and_spectrograms(client):
    content = wav_bytes(1.0, 22050, channels=2)
    accepted = submit(client, content, prompts=("a flute", "rain"), name="my tone.wav")
    assert accepted.status_code == 202
    status = wait_for(client, accepted.json()["id"])
    assert status["state"] == "done", status
    result = status["result"]
    assert result["input"]["name"] == "my tone.wav" and result["input"]["channels"] == 2
    assert [track["prompt"] for track in result["tracks"]] == ["a flute", "rain"]
    total = 0
    for track in (*result["tracks"], result["residual"]):
        audio = client.get(track["audio_url"])
        assert audio.headers["content-type"] == "audio/flac"
        waveform, rate = soundfile.read(io.BytesIO(audio.content))
        assert rate == 22050 and waveform.shape == (22050, 2)
        total = total + waveform
        image = client.get(track["spectrogram_url"])
        assert image.content.startswith(b"\x89PNG") and image.headers["content-type"] == "image/png"
    original, _ = soundfile.read(io.BytesIO(content))
    assert np.abs(total - original).max() < 1e-3  # the outputs and the residual add up to the input


def test_an_example_comes_with_its_references(client):
    example = list_examples()[0]
    accepted = client.post("/api/separate", data={"example": example.name, "prompts": [*example.prompts, "noise"]})
    status = wait_for(client, accepted.json()["id"])
    tracks = status["result"]["tracks"]
    assert [track["reference"] is not None for track in tracks] == [True] * len(example.prompts) + [False]
    reference = client.get(tracks[0]["reference"]["audio_url"])
    assert reference.content == example.references[example.prompts[0]].read_bytes()
    assert client.get(tracks[0]["reference"]["spectrogram_url"]).content.startswith(b"\x89PNG")
    gallery = client.get("/api/examples").json()
    assert [entry["name"] for entry in gallery] == [example.name for example in list_examples()]
    assert client.get(gallery[0]["mixture_url"]).content == example.mixture.read_bytes()


def test_oversize_uploads_are_refused_before_and_after_reading(client):
    huge = b"\0" * 2_000_000  # Content-Length alone is over the limit: refused before reading the body
    answer = submit(client, huge)
    assert answer.status_code == 413
    assert answer.json()["detail"].startswith("the upload is larger than the limit of 0.5 MB")
    over = wav_bytes(4.0, 48000, channels=2)  # 768 kB: within the form allowance, so refused while copying
    assert 500_000 < len(over) < 500_000 + (1 << 20)
    answer = submit(client, over, name="big.wav")
    assert answer.status_code == 413 and answer.json()["detail"].startswith("big.wav is larger than the limit")
    assert client.get("/api/info").status_code == 200


def test_an_upload_without_content_length_is_refused(client):
    def chunks():
        yield b"--x\r\nContent-Disposition: form-data; name=\"prompts\"\r\n\r\ndog\r\n--x--\r\n"

    answer = client.post("/api/separate", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert answer.status_code == 411 and "Content-Length" in answer.json()["detail"]


def test_too_long_corrupt_and_empty_files_are_refused(client):
    long_answer = submit(client, wav_bytes(6.0, 8000), name="long.wav")
    assert long_answer.status_code == 413 and "longer than the limit of 5 s" in long_answer.json()["detail"]
    corrupt = submit(client, b"RIFF" + b"\x13" * 5000, name="broken.wav")
    assert corrupt.status_code == 422 and corrupt.json()["detail"].startswith("broken.wav: unreadable or corrupt")
    assert "/" not in corrupt.json()["detail"].split(":")[0]  # the server's folders stay private
    empty = submit(client, b"", name="empty.wav")
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    wrong = submit(client, b"hello", name="notes.txt")
    assert wrong.status_code == 422 and "unsupported format '.txt'" in wrong.json()["detail"]


@pytest.mark.parametrize("prompts, message", [
    ([""], "empty prompt"), (["  "], "empty prompt"), (["dog", "dog"], "given twice"),
    (["a", "b", "c", "d", "e"], "at most 4"), (["x" * 201], "longer than 200"),
])
def test_bad_prompts_are_refused(client, prompts, message):
    answer = submit(client, wav_bytes(), prompts=prompts)
    assert answer.status_code == 422 and message in answer.json()["detail"]


def test_missing_or_contradictory_fields_are_refused(client):
    answer = client.post("/api/separate", files={"file": ("a.wav", wav_bytes(), "audio/wav")})
    assert answer.status_code == 422 and answer.json()["detail"] == "prompts: Field required"
    neither = client.post("/api/separate", data={"prompts": ["dog"]})
    assert neither.status_code == 422 and "either an audio file or" in neither.json()["detail"]
    unknown = client.post("/api/separate", data={"prompts": ["dog"], "example": "nope"})
    assert unknown.status_code == 422 and "no example named 'nope'" in unknown.json()["detail"]


def test_only_published_files_are_served(client):
    status = wait_for(client, submit(client, wav_bytes()).json()["id"])
    job_id = status["id"]
    assert client.get(f"/api/jobs/{job_id}/files/input.flac").status_code == 200
    for path in (f"/api/jobs/{job_id}/files/upload.wav", f"/api/jobs/{job_id}/files/..%2F..%2Fapp.py",
                 "/api/jobs/nope/files/input.flac", "/static/..%2Fapp.py", "/static/../app.py",
                 "/api/examples/speech-and-birds/..%2F..%2Fexamples.json", "/api/examples/speech-and-birds/9"):
        assert client.get(path).status_code == 404, path


def test_twenty_concurrent_requests_are_all_answered_and_none_is_lost(separator, monkeypatch):
    gate = threading.Event()
    original = separator.separate

    def held(*args, **kwargs):
        gate.wait(30)
        return original(*args, **kwargs)

    monkeypatch.setattr(separator, "separate", held)
    content = wav_bytes(0.5)
    with TestClient(create_app(Settings(**LIMITS), separator)) as client:
        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda _: submit(client, content), range(20)))
        codes = [answer.status_code for answer in answers]
        accepted = [answer.json()["id"] for answer in answers if answer.status_code == 202]
        busy = [answer for answer in answers if answer.status_code == 503]
        assert len(accepted) + len(busy) == 20, codes
        assert 3 <= len(accepted) <= 4  # one running (held) and the 3 the queue holds
        assert all(answer.json()["detail"].startswith("busy:") and answer.headers["Retry-After"] for answer in busy)
        queued = [client.get(f"/api/jobs/{job_id}").json() for job_id in accepted]
        assert sorted(status["position"] for status in queued if status["state"] == "queued")[-1] >= 2
        gate.set()
        assert [wait_for(client, job_id)["state"] for job_id in accepted] == ["done"] * len(accepted)
        assert wait_for(client, submit(client, content).json()["id"])["state"] == "done"


def test_a_crashing_job_fails_alone_and_the_worker_goes_on(separator, monkeypatch, client):
    original = separator.separate
    calls = []

    def crash_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return original(*args, **kwargs)

    monkeypatch.setattr(separator, "separate", crash_once)
    failed = wait_for(client, submit(client, wav_bytes()).json()["id"])
    assert failed["state"] == "failed" and failed["error"] == "internal error: RuntimeError: boom"
    assert wait_for(client, submit(client, wav_bytes()).json()["id"])["state"] == "done"


def test_finished_jobs_are_removed_after_the_keep_time_and_the_work_folder_at_shutdown(separator):
    app = create_app(Settings(**{**LIMITS, "keep_minutes": 0.005}), separator)  # 0.3 s
    work_dir = app.state.work_dir
    with TestClient(app) as client:
        job_id = submit(client, wav_bytes()).json()["id"]
        assert wait_for(client, job_id)["state"] == "done"
        deadline = time.monotonic() + 10
        while client.get(f"/api/jobs/{job_id}").status_code != 404 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get(f"/api/jobs/{job_id}").status_code == 404
        assert not (work_dir / "jobs" / job_id).exists()
    assert not work_dir.exists()


def test_settings_and_port_are_checked():
    with pytest.raises(BisepError, match="max-seconds must be positive"):
        Settings(max_seconds=0)
    with pytest.raises(BisepError, match="queue-size must be at least 1"):
        Settings(queue_size=0)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(BisepError, match="pass another --port"):
            _check_port("127.0.0.1", taken.getsockname()[1])
