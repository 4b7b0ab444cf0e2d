import contextlib
import http.client
import io
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import soundfile
from fastapi.testclient import TestClient

from bisep.errors import BisepError
from bisep.examples import list_examples
from bisep.separator.api import Separator
from bisep.serve.app import Settings, _check_port, create_app
from conftest import served, tone

LOCAL = "http://127.0.0.1:7860"  # the Host header a browser on this machine sends
LIMITS = dict(model="unittest", max_upload_mb=0.5, max_seconds=5.0, queue_size=3, max_prompts=4)


@pytest.fixture(scope="module")
def separator():
    return Separator.from_pretrained("unittest", device="cpu")


@pytest.fixture
def client(separator):
    with TestClient(create_app(Settings(**LIMITS), separator), base_url=LOCAL) as test_client:
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
    original = separator.separate_file

    def held(*args, **kwargs):
        gate.wait(30)
        return original(*args, **kwargs)

    monkeypatch.setattr(separator, "separate_file", held)
    content = wav_bytes(0.5)
    with TestClient(create_app(Settings(**LIMITS), separator), base_url=LOCAL) as client:
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
    original = separator.separate_file
    calls = []

    def crash_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return original(*args, **kwargs)

    monkeypatch.setattr(separator, "separate_file", crash_once)
    failed = wait_for(client, submit(client, wav_bytes()).json()["id"])
    assert failed["state"] == "failed" and failed["error"] == "internal error: RuntimeError: boom"
    assert wait_for(client, submit(client, wav_bytes()).json()["id"])["state"] == "done"


@pytest.mark.parametrize("threads, idle, expected", [(None, 1, [1, 2]), (3, 1, [3, 3])])
def test_each_job_runs_on_the_cores_idle_when_it_starts(separator, monkeypatch, threads, idle, expected):
    """A server outlives the load it started under: a training job beside it takes a core, then frees it."""
    import torch

    idle_now = iter([idle, idle + 1])
    chosen = []
    monkeypatch.setattr("bisep.serve.app.idle_cores", lambda: next(idle_now))
    monkeypatch.setattr(torch, "set_num_threads", chosen.append)
    with TestClient(create_app(Settings(**LIMITS, threads=threads), separator), base_url=LOCAL) as client:
        for _ in range(2):
            assert wait_for(client, submit(client, wav_bytes()).json()["id"])["state"] == "done"
    assert chosen == expected


def test_finished_jobs_are_removed_after_the_keep_time_and_the_work_folder_at_shutdown(separator):
    app = create_app(Settings(**{**LIMITS, "keep_minutes": 0.005}), separator)  # 0.3 s
    work_dir = app.state.work_dir
    with TestClient(app, base_url=LOCAL) as client:
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
    with pytest.raises(BisepError, match="threads must be at least 1"):
        Settings(threads=0)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(BisepError, match="pass another --port"):
            _check_port("127.0.0.1", taken.getsockname()[1])


def test_a_chunked_body_with_a_content_length_is_refused_unread(client):
    """Issue #23: Content-Length 100 and Transfer-Encoding chunked once wrote the whole body to disk."""
    sent = []

    def body():
        for _ in range(50):
            sent.append(1)
            yield b"\0" * 100_000

    answer = client.post("/api/separate", content=body(), headers={
        "Content-Type": "multipart/form-data; boundary=x", "Content-Length": "100", "Transfer-Encoding": "chunked"})
    assert answer.status_code == 400 and "both Content-Length and Transfer-Encoding" in answer.json()["detail"]


BLOCK = b"\0" * 100_000
OFFERED_BLOCKS = 20  # 2 MB offered after the answer: 4 times the limit


@pytest.fixture(scope="module")
def server(separator):
    """The app under a real uvicorn server: what its HTTP parser (h11) passes on, not only what the test client
    sends (issue #23: a chunked body behind ``Content-Length: 100`` once landed on disk whole)."""
    app = create_app(Settings(**LIMITS), separator)
    with served(app) as port:
        yield port, app.state.work_dir


def answer_before_the_body(port: int, headers: dict[str, str], chunked: bool) -> tuple[int, dict]:
    """POST the headers of an upload, read the answer before sending a byte of its body, then offer the body
    (``OFFERED_BLOCKS`` blocks, chunk-framed when ``chunked``) to whatever the server does with the rest of the
    connection. Returns the answer's status and JSON."""
    head = "".join(f"{name}: {value}\r\n" for name, value in {
        "Host": f"127.0.0.1:{port}", "Content-Type": "multipart/form-data; boundary=x", **headers}.items())
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(f"POST /api/separate HTTP/1.1\r\n{head}\r\n".encode())
        answer = http.client.HTTPResponse(connection)
        answer.begin()  # times out (5 s) if the server waits for the body
        status, detail = answer.status, json.loads(answer.read())
        piece = f"{len(BLOCK):x}\r\n".encode() + BLOCK + b"\r\n" if chunked else BLOCK
        with contextlib.suppress(OSError):  # the server may close the connection instead of reading on
            for _ in range(OFFERED_BLOCKS):
                connection.sendall(piece)
    return status, detail


@pytest.mark.parametrize("headers, chunked, status, detail", [
    ({"Content-Length": "100", "Transfer-Encoding": "chunked"}, True, 400, "both Content-Length and"),
    ({"Transfer-Encoding": "chunked"}, True, 411, "need a Content-Length"),
    ({"Content-Length": str(5_000_000)}, False, 413, "larger than the limit of 0.5 MB"),
], ids=["both-headers", "chunked-without-length", "length-over-the-limit"])
def test_uploads_the_limit_refuses_are_answered_before_their_body_is_read(server, headers, chunked, status, detail):
    port, work_dir = server
    answered, body = answer_before_the_body(port, headers, chunked)
    assert (answered, detail in body["detail"]) == (status, True), body
    assert not any((work_dir / "jobs").iterdir())  # no job, so no upload was written
    assert httpx.get(f"http://127.0.0.1:{port}/api/info", timeout=5).status_code == 200  # still serving


def call_middleware(middleware_app, headers, chunks):
    """Run an ASGI app on one POST whose body arrives in ``chunks``; returns (status, chunks read)."""
    import asyncio

    reads, sent = [], []
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    messages[-1]["more_body"] = False

    async def receive():
        reads.append(1)
        return messages[len(reads) - 1]

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/separate", "headers": headers, "query_string": b"",
             "root_path": "", "scheme": "http", "server": ("127.0.0.1", 7860), "http_version": "1.1"}
    asyncio.run(middleware_app(scope, receive, send))
    return sent[0]["status"], len(reads)


def test_the_bytes_received_count_and_reading_stops_past_the_limit():
    from fastapi import FastAPI, Request

    from bisep.serve.app import UploadLimit

    inner = FastAPI()

    @inner.post("/api/separate")
    async def read_all(request: Request):
        return {"bytes": len(await request.body())}

    middleware = UploadLimit(inner, limit_bytes=1000)
    chunks = [b"\0" * 100_000] * 1000  # 100 MB behind a Content-Length of 100
    status, reads = call_middleware(middleware, [(b"content-length", b"100")], chunks)
    assert status == 413 and reads == 1  # stopped at the first block past the declared length
    allowance = str(1000 + (1 << 20)).encode()  # the limit plus the form's overhead: not refused up front
    status, reads = call_middleware(middleware, [(b"content-length", allowance)], [b"\0" * 600_000] * 2000)
    assert status == 413 and reads == 2
    status, _ = call_middleware(middleware, [(b"content-length", b"500")], [b"\0" * 250] * 2)
    assert status == 200


@pytest.mark.parametrize("headers", [{"Host": "evil.example"}, {"Host": "evil.example:7860"},
                                     {"Origin": "http://evil.example"}, {"Origin": "http://localhost:9999"}])
def test_foreign_hosts_and_cross_origin_posts_are_refused(client, headers):
    answer = client.post("/api/separate", files={"file": ("a.wav", wav_bytes(), "audio/wav")},
                         data={"prompts": ["dog"]}, headers=headers)
    assert answer.status_code == 403, answer.text
    if "Host" in headers:
        assert client.get("/api/info", headers=headers).status_code == 403


def test_this_servers_own_names_and_origin_are_accepted(client):
    for host in ("127.0.0.1:7860", "localhost:7860", "[::1]:7860"):
        assert client.get("/api/info", headers={"Host": host}).status_code == 200
    same = client.post("/api/separate", files={"file": ("a.wav", wav_bytes(), "audio/wav")},
                       data={"prompts": ["dog"]}, headers={"Origin": LOCAL})
    assert same.status_code == 202


def test_a_wildcard_bind_accepts_any_host():
    from bisep.serve.app import allowed_hosts

    assert allowed_hosts("0.0.0.0") is None
    assert allowed_hosts("192.168.1.5") == {"192.168.1.5"}


def test_a_non_ascii_digit_is_no_example_part(client):
    name = list_examples()[0].name
    for part in ("\u00b2", "\u0661", "99999999999999999999"):
        assert client.get(f"/api/examples/{name}/{part}").status_code == 404, part


def test_channels_rate_and_decoded_samples_are_capped(client, tmp_path):
    eight = submit(client, wav_bytes(0.2, 8000, channels=9), name="nine.wav")
    assert eight.status_code == 422 and "at most 8" in eight.json()["detail"]
    # 5 s x 48 kHz x 2 channels = 480 000 samples: 8 channels at 16 kHz may have 3.75 s, not 4
    silence = io.BytesIO()  # a few kB of FLAC that decode to 512 000 samples
    soundfile.write(silence, np.zeros((64000, 8), np.float32), 16000, format="FLAC")
    many = submit(client, silence.getvalue(), name="many.flac")
    assert many.status_code == 413 and "million samples per job" in many.json()["detail"]
    high = submit(client, wav_bytes(0.5, 96000), name="high.wav")
    status = wait_for(client, high.json()["id"])
    assert status["state"] == "done" and status["result"]["input"]["sample_rate"] == 48000
    audio = client.get(status["result"]["tracks"][0]["audio_url"]).content
    assert soundfile.info(io.BytesIO(audio)).samplerate == 48000


def test_a_file_longer_than_its_header_says_is_stopped_while_decoding(separator, tmp_path):
    from bisep.serve.app import Settings

    settings = Settings(**{**LIMITS, "max_seconds": 1.0})
    soundfile.write(tmp_path / "long.wav", np.zeros((48000 * 3, 2), np.float32), 48000)
    with pytest.raises(BisepError, match="million samples"):
        separator.separate_file(tmp_path / "long.wav", ["x"], [tmp_path / "x.flac"], **{
            **settings.limits, "max_seconds": None})
    assert not (tmp_path / "x.flac").exists()
