"""The shipped model's outputs on fixed inputs, compared with stored values, so silent numeric drift (a changed
segmenter, resampler, STFT or weight loading) fails a test instead of shifting every figure.

The stored values are every 16th sample of each output. After an intended change of results, regenerate with
``BISEP_REGENERATE=1 python -m pytest tests/separator/test_regression.py`` and say why in the commit.
"""

import os
from pathlib import Path

import numpy as np
import pytest

from bisep.audio import load_audio
from bisep.examples import list_examples
from bisep.separator.api import Separator

STORED = Path(__file__).parent / "data" / "regression.npz"
DECIMATION = 16
PROMPTS = ["a violin", "drums"]


@pytest.fixture(scope="module")
def separator():
    return Separator.from_pretrained("builtin", device="cpu")


def _stereo_input() -> np.ndarray:
    """``(2, samples)`` at 16 kHz: two shipped example mixtures side by side."""
    examples = {example.name: example for example in list_examples()}
    left = load_audio(examples["violin-and-drums"].mixture)[0][0].numpy()
    right = load_audio(examples["speech-and-birds"].mixture)[0][0].numpy()
    length = min(len(left), len(right))
    return np.stack([left[:length], right[:length]])


def _outputs(separator) -> dict[str, np.ndarray]:
    stereo = _stereo_input()
    chunked = separator.separate(stereo, PROMPTS, sample_rate=16000, residual=True, segment_seconds=1.5,
                                 overlap=0.25)
    resampled = separator.separate(stereo[:1], PROMPTS, sample_rate=22050, residual=False)
    outputs = {f"chunked|{prompt}": chunked.sources[prompt] for prompt in PROMPTS}
    outputs["chunked|residual"] = chunked.residual
    outputs.update({f"resampled|{prompt}": resampled.sources[prompt] for prompt in PROMPTS})
    return {key: value[..., ::DECIMATION] for key, value in outputs.items()}


def test_the_shipped_model_gives_the_stored_outputs(separator):
    outputs = _outputs(separator)
    if os.environ.get("BISEP_REGENERATE"):
        STORED.parent.mkdir(exist_ok=True)
        np.savez_compressed(STORED, **outputs)
    stored = np.load(STORED)
    assert sorted(stored.files) == sorted(outputs)
    for key, value in outputs.items():
        assert value.shape == stored[key].shape, key
        np.testing.assert_allclose(value, stored[key], atol=2e-5, rtol=0, err_msg=key)
