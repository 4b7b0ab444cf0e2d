"""A small dataset in the bisep format, written on the fly: tones and noise of known classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from bisep.data.format import write_dataset

RATE = 16000
CLASSES = {"low hum": 180.0, "high whistle": 2400.0, "hiss": None, "beeping": 900.0}


def sound(label: str, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * RATE)) / RATE
    frequency = CLASSES[label]
    if frequency is None:
        return (0.2 * rng.standard_normal(time.size)).astype(np.float32)
    signal = 0.4 * np.sin(2 * np.pi * frequency * time + rng.uniform(0, 6))
    if label == "beeping":
        signal *= (np.sin(2 * np.pi * 3 * time) > 0)
    return signal.astype(np.float32)


def make_dataset(folder: Path, silent_clip: bool = False) -> Path:
    """Four clips of four classes (one shorter than the others) and compositions test_2 and test_3; with
    ``silent_clip`` a fifth, all-zero clip and a composition that uses it."""
    clips, ids = {}, []
    for index, label in enumerate(CLASSES):
        clip_id = f"test-{index:03d}"
        seconds = 1.0 if index == 3 else 1.25
        _write(folder, clip_id, sound(label, seconds, index))
        clips[clip_id] = {"audio": f"audio/test/{clip_id}.wav", "caption": f"A {label}.", "phrases": [f"a {label}"],
                          "labels": [label]}
        ids.append(clip_id)
    compositions = {"test_2": [["test-000", "test-001"], ["test-002", "test-003"], ["test-000", "test-003"]],
                    "test_3": [["test-000", "test-001", "test-002"]]}
    if silent_clip:
        _write(folder, "test-004", np.zeros(int(1.25 * RATE), np.float32))
        clips["test-004"] = {"audio": "audio/test/test-004.wav", "caption": "Nothing.", "phrases": ["nothing"],
                             "labels": ["silence"]}
        ids.append("test-004")
        compositions["test_2"].append(["test-001", "test-004"])
    write_dataset(folder, clips, {"test": ids}, compositions, {"generator": "tests"}, RATE)
    return folder


def _write(folder: Path, clip_id: str, signal: np.ndarray) -> None:
    path = folder / "audio" / "test" / f"{clip_id}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, signal, RATE, subtype="FLOAT")
