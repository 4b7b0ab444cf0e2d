"""The web application: a page of our own (``static/``) over a JSON API, built with FastAPI.

Why FastAPI and a small page rather than Gradio: FastAPI gives the documented JSON API (OpenAPI schema at
``/api/openapi.json``) and full control over what matters here: exact limits with 4xx answers, a bounded queue,
which files are served. Gradio would bring a large dependency tree, its own queue and file-serving rules, and a
page that loads assets and reports analytics over the network unless told not to; the page here is three
static files that work offline. FastAPI's interactive docs are switched off because they load their scripts
from a CDN.

Requests must name this server in ``Host`` (one of the names it is bound to) and, when a browser sends an
``Origin``, come from this server's own pages, as Jupyter does: another web site cannot post jobs through a
visitor's browser, nor reach the server by rebinding its own name to 127.0.0.1.

Routes: ``GET /`` the page; ``GET /api/info`` model and limits; ``GET /api/examples`` the shipped examples and
their files; ``POST /api/separate`` queue a separation (202, or 413/422 for bad input, 503 when busy);
``GET /api/jobs/{id}`` its state and results; ``GET /api/jobs/{id}/files/{name}`` one result file.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
import torch
from pydantic import BaseModel

from bisep.version import __version__
from bisep.audio import AudioError, AudioTooLong, probe_audio
from bisep.cores import idle_cores
from bisep.errors import BisepError
from bisep.examples import Example, list_examples
from bisep.grounding.base import check_prompts
from bisep.separator.api import Separator
from bisep.serve.jobs import Busy, Janitor, Job, JobQueue
from bisep.serve.pipeline import run_separation

STATIC = Path(__file__).resolve().parent / "static"
MAX_PROMPT_CHARACTERS = 200
MAX_CHANNELS = 8
MAX_SAMPLE_RATE = 192_000  # accepted; anything above SEPARATION_RATE is resampled to it first
SEPARATION_RATE = 48_000
BUDGET_CHANNELS = 2  # a job may decode max_seconds of SEPARATION_RATE stereo: fewer seconds at more channels
FORM_OVERHEAD_BYTES = 1 << 20  # multipart boundaries and the prompt fields around the file
COPY_BLOCK = 1 << 20


@dataclass(frozen=True)
class Settings:
    """What ``bisep serve`` may accept and keep. ``work_dir``: where jobs live (default: a new temporary folder,
    removed at shutdown)."""

    model: str = "builtin"
    max_upload_mb: float = 50.0
    max_seconds: float = 600.0
    max_prompts: int = 8
    queue_size: int = 8
    keep_minutes: float = 60.0
    device: str | None = None
    work_dir: Path | None = None
    host: str = "127.0.0.1"
    threads: int | None = None  # per separation; None: the cores idle when it starts (bisep.cores.idle_cores)

    def __post_init__(self) -> None:
        for name in ("max_upload_mb", "max_seconds", "keep_minutes"):
            if not getattr(self, name) > 0:
                raise BisepError(f"{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        for name in ("max_prompts", "queue_size"):
            if getattr(self, name) < 1:
                raise BisepError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise BisepError(f"threads must be at least 1, got {self.threads}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)

    @property
    def max_samples(self) -> int:
        """Decoded samples (frames x channels, at the file's own rate) one job may read."""
        return int(self.max_seconds * SEPARATION_RATE * BUDGET_CHANNELS)

    @property
    def limits(self) -> dict:
        """What :meth:`~bisep.separator.api.Separator.separate_file` enforces while decoding."""
        return {"max_rate": SEPARATION_RATE, "max_seconds": self.max_seconds, "max_samples": self.max_samples}


class Track(BaseModel):
    """One audio file of a result with its spectrogram (URLs on this server)."""

    audio_url: str
    spectrogram_url: str


class PromptTrack(Track):
    """What the prompt extracted; ``reference``: the true source, when the job separated a shipped example."""

    prompt: str
    reference: Track | None = None


class InputTrack(Track):
    name: str
    seconds: float
    sample_rate: int
    channels: int


class SeparationResult(BaseModel):
    input: InputTrack
    tracks: list[PromptTrack]
    residual: Track
    warnings: list[str]


class JobStatus(BaseModel):
    """``state``: queued (``position`` jobs ahead), running (``progress`` 0-1, ``stage``), done (``result``) or
    failed (``error``)."""

    id: str
    state: Literal["queued", "running", "done", "failed"]
    stage: str
    progress: float
    position: int
    error: str | None = None
    result: SeparationResult | None = None


class ExampleReference(BaseModel):
    prompt: str
    audio_url: str


class ExampleInfo(BaseModel):
    name: str
    caption: str
    prompts: list[str]
    mixture_url: str
    references: list[ExampleReference]


class ServerInfo(BaseModel):
    """The limits: ``max_samples`` decoded samples (frames x channels) per job, at most ``max_channels``
    channels; input above ``separation_rate`` Hz is separated (and returned) at that rate."""

    version: str
    model: str
    max_upload_mb: float
    max_seconds: float
    max_samples: int
    max_channels: int
    separation_rate: int
    max_prompts: int
    queue_size: int
    waiting: int


class ErrorMessage(BaseModel):
    detail: str


ERRORS = {status: {"model": ErrorMessage} for status in (400, 403, 404, 411, 413, 422, 503)}


class UploadLimit:
    """ASGI middleware: refuses an upload whose Content-Length is over the limit before reading its body (413),
    one without a Content-Length (411) and one that also declares a chunked Transfer-Encoding (400: which of
    the two frames the body is ambiguous); then counts the body bytes actually received and stops reading
    past the declared length or the limit (413), so no request writes more than the limit to disk."""

    def __init__(self, app, limit_bytes: int, paths: tuple[str, ...] = ("/api/separate",)):
        self.app, self.limit_bytes, self.paths = app, limit_bytes, paths

    async def __call__(self, scope, receive, send):
        if not (scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is None or not (length.isascii() and length.isdigit()):
            return await JSONResponse({"detail": "uploads need a Content-Length header"}, 411)(scope, receive, send)
        if b"transfer-encoding" in headers:
            return await JSONResponse({"detail": "uploads must not carry both Content-Length and "
                                                 "Transfer-Encoding"}, 400)(scope, receive, send)
        allowed = min(int(length), self.limit_bytes + FORM_OVERHEAD_BYTES)
        if int(length) > allowed:
            return await JSONResponse({"detail": _too_large(int(length), self.limit_bytes)}, 413)(
                scope, receive, send)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > allowed:
                    raise HTTPException(413, _too_large(received, self.limit_bytes) if received > self.limit_bytes
                                        else f"the body is longer than its Content-Length of {allowed} bytes")
            return message

        await self.app(scope, counted_receive, send)


class LocalOrigin:
    """ASGI middleware: answers 403 to a request whose ``Host`` is not a name of this server, or whose
    ``Origin`` (sent by browsers with cross-site posts) is not this server. ``hosts``: the accepted host names,
    or None to accept any (a server bound to every address cannot know its names)."""

    def __init__(self, app, hosts: frozenset[str] | None):
        self.app, self.hosts = app, hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self.hosts is not None:
            headers = dict(scope["headers"])
            host = headers.get(b"host", b"").decode("latin-1")
            if _host_name(host) not in self.hosts:
                return await JSONResponse({"detail": f"unknown Host {host!r}: this server answers to "
                                                     f"{', '.join(sorted(self.hosts))}"}, 403)(scope, receive, send)
            origin = headers.get(b"origin", b"").decode("latin-1")
            if origin and scope["method"] not in ("GET", "HEAD") and origin.partition("://")[2] != host:
                return await JSONResponse({"detail": f"cross-origin request from {origin!r} refused"}, 403)(
                    scope, receive, send)
        await self.app(scope, receive, send)


def allowed_hosts(host: str) -> frozenset[str] | None:
    """The host names a server bound to ``host`` answers to: the address itself, and the loopback names when
    it is a loopback address; None (any) for the wildcard addresses."""
    if host in ("0.0.0.0", "::", ""):
        return None
    names = {host.lower().strip("[]")}
    if _is_loopback(host):
        names |= {"localhost", "127.0.0.1", "::1"}
    return frozenset(names)


def _host_name(host: str) -> str:
    """``example.com:8080`` -> ``example.com``; ``[::1]:7860`` -> ``::1``."""
    if host.startswith("["):
        return host[1:].partition("]")[0].lower()
    return host.rpartition(":")[0].lower() if host.count(":") == 1 else host.lower()


def create_app(settings: Settings, separator: Separator | None = None) -> FastAPI:
    """The application; loads ``settings.model`` unless a ``separator`` is given (tests pass one)."""
    separator = separator or Separator.from_pretrained(settings.model, device=settings.device)
    own_work_dir = settings.work_dir is None
    work_dir = Path(tempfile.mkdtemp(prefix="bisep-serve-")) if own_work_dir else Path(settings.work_dir)
    (work_dir / "jobs").mkdir(parents=True, exist_ok=True)
    examples = {example.name: example for example in list_examples()}

    def work(job: Job) -> dict:
        torch.set_num_threads(settings.threads or idle_cores())  # in the worker thread, which runs the network
        return run_separation(job, separator, settings.limits, queue.stopping)

    queue = JobQueue(work, settings.queue_size)
    janitor = Janitor(queue, settings.keep_minutes * 60)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        queue.start()
        janitor.start()
        try:
            yield
        finally:
            janitor.stop()
            queue.stop()
            if own_work_dir:
                shutil.rmtree(work_dir, ignore_errors=True)

    app = FastAPI(title="bisep", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json",
                  description="Text-queried sound separation: upload audio, name the sounds you want, get them "
                              "back with the residual and spectrograms. Submit with POST /api/separate, then poll "
                              "GET /api/jobs/{id} until its state is done or failed.")
    app.state.settings, app.state.queue, app.state.janitor, app.state.work_dir = settings, queue, janitor, work_dir
    app.add_middleware(UploadLimit, limit_bytes=settings.max_upload_bytes)
    app.add_middleware(LocalOrigin, hosts=allowed_hosts(settings.host))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(RequestValidationError)
    async def one_line_validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(part) for part in item['loc'][1:]) or 'request'}: {item['msg']}"
                    for item in error.errors()]
        return JSONResponse({"detail": "; ".join(problems)}, 422)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/info", response_model=ServerInfo)
    def server_info() -> ServerInfo:
        """The model in use and the limits uploads must respect."""
        return ServerInfo(version=__version__, model=separator.name, max_upload_mb=settings.max_upload_mb,
                          max_seconds=settings.max_seconds, max_samples=settings.max_samples,
                          max_channels=MAX_CHANNELS, separation_rate=SEPARATION_RATE, max_prompts=settings.max_prompts,
                          queue_size=settings.queue_size, waiting=queue.waiting())

    @app.get("/api/examples", response_model=list[ExampleInfo])
    def example_list() -> list[ExampleInfo]:
        """The shipped example mixtures, their prompts and the reference of each prompt."""
        return [ExampleInfo(name=example.name, caption=example.caption, prompts=list(example.prompts),
                            mixture_url=_example_url(example.name, "mixture"),
                            references=[ExampleReference(prompt=prompt, audio_url=_example_url(example.name, index))
                                        for index, prompt in enumerate(example.prompts)])
                for example in examples.values()]

    @app.get("/api/examples/{name}/{part}", response_class=FileResponse, responses=ERRORS)
    def example_file(name: str, part: str) -> FileResponse:
        """An example's mixture (``part`` = mixture) or the reference of its prompt number ``part`` (0-based)."""
        example = examples.get(name)
        if example is None:
            raise HTTPException(404, f"no example named {name!r}")
        if part == "mixture":
            path = example.mixture
        elif re.fullmatch("[0-9]{1,4}", part) and int(part) < len(example.prompts):
            path = example.references[example.prompts[int(part)]]
        else:
            raise HTTPException(404, f"example {name} has no part {part!r}")
        return FileResponse(path, media_type="audio/flac", filename=f"{name}-{path.name}")

    @app.post("/api/separate", status_code=202, response_model=JobStatus, responses=ERRORS)
    def separate(
        prompts: Annotated[list[str], Form(description="What to extract; repeat the field for more prompts.")],
        file: Annotated[UploadFile | None, File(description="The audio file (wav, flac, ogg, mp3, ...).")] = None,
        example: Annotated[str | None, Form(description="Name of a shipped example, instead of a file.")] = None,
    ) -> JSONResponse:
        """Queue a separation of an uploaded file (or a shipped example) by one or more prompts. Answers 202
        with the job's status; poll ``GET /api/jobs/{id}``. Refuses empty or duplicate prompts (422),
        unreadable audio (422), files over the size or duration limit (413), and answers 503 when the queue
        is full."""
        prompts = _checked_prompts(prompts, settings.max_prompts)
        if (file is None) == (example is None):
            raise HTTPException(422, "give either an audio file or the name of an example, not both")
        job_id = secrets.token_urlsafe(12)
        job = Job(id=job_id, folder=work_dir / "jobs" / job_id, request={"prompts": prompts})
        job.folder.mkdir()
        try:
            if file is not None:
                job.request.update(_receive_upload(file, job.folder, settings))
            else:
                job.request.update(_example_request(examples, example, prompts))
            position = queue.submit(job)
        except Busy as busy:
            shutil.rmtree(job.folder, ignore_errors=True)
            raise HTTPException(503, str(busy), headers={"Retry-After": "30"}) from None
        except BaseException:
            shutil.rmtree(job.folder, ignore_errors=True)
            raise
        return JSONResponse(_status(job, position).model_dump(), 202)

    @app.get("/api/jobs/{job_id}", response_model=JobStatus, responses=ERRORS)
    def job_status(job_id: str) -> JobStatus:
        """A job's state; when done, the URLs of every output and its spectrogram."""
        job = _job(queue, job_id)
        return _status(job, queue.ahead_of(job) if job.state == "queued" else 0)

    @app.get("/api/jobs/{job_id}/files/{name}", response_class=FileResponse, responses=ERRORS)
    def job_file(job_id: str, name: str) -> FileResponse:
        """One output file of a finished job (FLAC audio or PNG spectrogram)."""
        path = _job(queue, job_id).files.get(name)
        if path is None or not path.is_file():
            raise HTTPException(404, f"job {job_id} has no file {name!r}")
        media_type = "audio/flac" if path.suffix == ".flac" else "image/png"
        return FileResponse(path, media_type=media_type, filename=name)

    @app.exception_handler(BisepError)
    async def bad_input(_: Request, error: BisepError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, 413 if isinstance(error, AudioTooLong) else 422)

    return app


def _checked_prompts(prompts: list[str], limit: int) -> list[str]:
    prompts = check_prompts(prompts)
    if len(prompts) > limit:
        raise BisepError(f"{len(prompts)} prompts given; at most {limit} per separation")
    for prompt in prompts:
        if len(prompt) > MAX_PROMPT_CHARACTERS:
            raise BisepError(f"prompt '{prompt[:40]}...' is longer than {MAX_PROMPT_CHARACTERS} characters")
    repeated = {prompt for prompt in prompts if prompts.count(prompt) > 1}
    if repeated:
        raise BisepError(f"prompt '{sorted(repeated)[0]}' is given twice")
    return prompts


def _receive_upload(file: UploadFile, folder: Path, settings: Settings) -> dict:
    """Copy the upload into the job folder within the size limit and check its header (rate, length)."""
    display_name = _display_name(file.filename)
    suffix = re.sub(r"[^a-z0-9]", "", Path(display_name).suffix.lower())[:5]
    path = folder / f"upload.{suffix or 'audio'}"
    size = 0
    with open(path, "wb") as out:
        while block := file.file.read(COPY_BLOCK):
            size += len(block)
            if size > settings.max_upload_bytes:
                raise HTTPException(413, _too_large(size, settings.max_upload_bytes, display_name))
            out.write(block)
    try:
        info = probe_audio(path, settings.max_seconds)
    except AudioError as error:
        raise type(error)(str(error).replace(str(path), display_name)) from None
    if info.channels > MAX_CHANNELS:
        raise BisepError(f"{display_name}: {info.channels} channels; at most {MAX_CHANNELS} are separated")
    if info.samplerate > MAX_SAMPLE_RATE:
        raise BisepError(f"{display_name}: {info.samplerate} Hz is above {MAX_SAMPLE_RATE} Hz")
    if info.frames * info.channels > settings.max_samples:
        raise AudioTooLong(f"{display_name}: {info.channels} channels x {info.frames / info.samplerate:.1f} s is "
                           f"more than the limit of {settings.max_samples / 1e6:.1f} million samples per job "
                           f"({settings.max_seconds:g} s of {SEPARATION_RATE // 1000} kHz stereo)")
    return {"audio": path, "display_name": display_name}


def _example_request(examples: dict[str, Example], name: str, prompts: list[str]) -> dict:
    example = examples.get(name)
    if example is None:
        raise HTTPException(422, f"no example named {name!r} (known: {', '.join(examples)})")
    references = {prompt: {"path": example.references[prompt],
                           "url": _example_url(name, example.prompts.index(prompt))}
                  for prompt in prompts if prompt in example.references}
    return {"audio": example.mixture, "display_name": f"{name}.flac", "references": references}


def _display_name(filename: str | None) -> str:
    """The upload's own file name without folders or control characters, for messages and the page."""
    name = Path((filename or "upload").replace("\\", "/")).name
    name = "".join(character for character in name if character.isprintable())[:100]
    return name or "upload"


def _too_large(size: int, limit: int, name: str = "the upload") -> str:
    return f"{name} is larger than the limit of {limit / 1e6:g} MB ({size / 1e6:.1f} MB or more)"


def _example_url(name: str, part: str | int) -> str:
    return f"/api/examples/{name}/{part}"


def _job(queue: JobQueue, job_id: str) -> Job:
    job = queue.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r} (unknown, or removed after its results expired)")
    return job


def _status(job: Job, position: int) -> JobStatus:
    result = None
    if job.state == "done" and job.result is not None:
        def url(name: str) -> str:
            return f"/api/jobs/{job.id}/files/{name}"

        def track(entry: dict) -> dict:
            return {"audio_url": url(entry["audio"]), "spectrogram_url": url(entry["spectrogram"])}

        raw = job.result
        result = SeparationResult(
            input={**{key: raw["input"][key] for key in ("name", "seconds", "sample_rate", "channels")},
                   **track(raw["input"])},
            tracks=[{"prompt": entry["prompt"], **track(entry),
                     "reference": {"audio_url": entry["reference"]["audio_url"],
                                   "spectrogram_url": url(entry["reference"]["spectrogram"])}
                     if "reference" in entry else None}
                    for entry in raw["tracks"]],
            residual=track(raw["residual"]),
            warnings=raw["warnings"],
        )
    return JobStatus(id=job.id, state=job.state, stage=job.stage, progress=round(job.progress, 3),
                     position=position, error=job.error, result=result)


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Run the app with uvicorn until interrupted; refuses a port in use before loading the model."""
    import uvicorn

    _check_port(host, port)
    if not _is_loopback(host):
        print(f"bisep: warning: serving on {host}: anyone who can reach this machine can use it",
              file=sys.stderr)
    app = create_app(settings)
    shown = f"[{host}]" if ":" in host else host
    print(f"bisep serve: model {settings.model}; open http://{shown}:{port}/ (Ctrl-C to stop)", flush=True)
    # uvicorn shuts down cleanly on SIGINT and SIGTERM, then raises the signal again; without a handler of our
    # own, SIGTERM would end the process right there, before the "stopped" line
    previous = signal.signal(signal.SIGTERM, _stop_on_signal)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("bisep serve: stopped", flush=True)


class _Stopped(Exception):
    """SIGTERM arrived (after uvicorn's own shutdown)."""


def _stop_on_signal(number, frame) -> None:
    raise _Stopped


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        raise BisepError(f"cannot listen on {host}:{port} ({error.strerror or error}); pass another --port")
