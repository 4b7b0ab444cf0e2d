"""A small labelled dataset (short tones, one or two labels per clip) for the shard and streaming tests."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from bisep.data.format import write_dataset

RATE = 16000
LABELS = ["dog", "bird", "siren", "rain", "bell", "car"]


def write_labelled_dataset(folder, train_clips: int = 20, single_clips: int = 8) -> None:
    """``train``: clips of one or two labels; ``train_sup``: single-source clips; 16-bit wav, 0.2-0.3 s."""
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
            wave = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 2000) * np.arange(samples) / RATE)
            audio = f"audio/{split}/{clip_id}.wav"
            (folder / audio).parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(folder / audio, (wave + 0.02 * rng.standard_normal(samples)).astype(np.float32), RATE)
            clips[clip_id] = {"id": clip_id, "audio": audio, "caption": " while ".join(phrases).capitalize(),
                              "phrases": phrases, "labels": labels, "duration": samples / RATE}
            splits[split].append(clip_id)
    write_dataset(folder, clips, splits, {}, {"generator": "test"}, RATE)


@pytest.fixture(scope="module")
def labelled_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labelled") / "dataset"
    write_labelled_dataset(folder)
    return folder
