"""Shared fixtures: small real audio files written on the fly; a web app under a real server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import numpy as np
import pytest
import soundfile


def tone(frequency: float = 440.0, seconds: float = 1.0, sample_rate: int = 16000, amplitude: float = 0.5):
    time = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


@contextlib.contextmanager
def served(app, timeout: float = 30.0):
    """``app`` under a real uvicorn server in a thread, as ``bisep serve`` runs it (uvicorn's defaults, log level
    warning) but on a free loopback port; yields the port and stops the server on exit."""
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started, "the server did not start"
        yield listener.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout)
        listener.close()


def speech_like(seconds: float = 1.0, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A voiced, formant-filtered pulse train with a moving pitch: harmonics up to ~4 kHz, syllable rhythm."""
    from scipy import signal

    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = 110 + 30 * np.sin(2 * np.pi * 1.7 * time + rng.uniform(0, 6))
    phase = np.cumsum(2 * np.pi * pitch / sample_rate)
    voiced = sum(np.sin(k * phase) / k for k in range(1, 35))
    b, a = signal.butter(4, [300 / (sample_rate / 2), 3400 / (sample_rate / 2)], "band")
    shaped = signal.lfilter(b, a, voiced) * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * time))
    return (0.8 * shaped / np.abs(shaped).max()).astype(np.float32)


@pytest.fixture
def wav_file(tmp_path):
    path = tmp_path / "tone.wav"
    soundfile.write(path, tone(), 16000)
    return path


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """A tiny built-in corpus (2 s clips) shared by the tests that train or evaluate on real data."""
    from bisep.data.corpus import CorpusOptions, build_corpus
    from bisep.data.sources import RenderResources
    from bisep.data.sources.general_midi import default_soundfonts

    folder = tmp_path_factory.mktemp("shared-corpus") / "tiny"
    build_corpus(folder, CorpusOptions(size="tiny", seed=3, clip_seconds=2.0, with_stems=True),
                 RenderResources(default_soundfonts()), jobs=2, progress=False)
    return folder


LABELS = ["dog", "bird", "siren", "rain", "bell", "car"]


def write_labelled_dataset(folder, train_clips: int = 20, single_clips: int = 8) -> None:
    """A small labelled dataset for the shard and streaming tests. ``train``: clips of one or two labels;
    ``train_sup``: single-source clips; 16-bit wav of 0.2-0.3 s."""
    from bisep.data.format import write_dataset

    rng = np.random.default_rng(1)
    clips, splits = {}, {"train": [], "train_sup": []}
    for split, count in (("train", train_clips), ("train_sup", single_clips)):
        for number in range(count):
            clip_id = f"{split}-{number:03d}"
            labels = [LABELS[number % len(LABELS)]]
            if split == "train" and number % 3 == 0:
                labels.append(LABELS[(number + 2) % len(LABELS)])
            phrases = [f"a {label} sounds" for label in labels]
            samples = int(rng.integers(3200, 4800))
            wave = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 2000) * np.arange(samples) / 16000)
            audio = f"audio/{split}/{clip_id}.wav"
            (folder / audio).parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(folder / audio, (wave + 0.02 * rng.standard_normal(samples)).astype(np.float32), 16000)
            clips[clip_id] = {"id": clip_id, "audio": audio, "caption": " while ".join(phrases).capitalize(),
                              "phrases": phrases, "labels": labels, "duration": samples / 16000}
            splits[split].append(clip_id)
    write_dataset(folder, clips, splits, {}, {"generator": "test"}, 16000)


@pytest.fixture(scope="module")
def labelled_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labelled") / "dataset"
    write_labelled_dataset(folder)
    return folder
