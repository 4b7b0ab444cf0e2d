import numpy as np
import pytest
import soxr
import torch

from bisep.spectral import ISTFT, STFT, Resample, from_magnitude_phase, magnitude_phase
from conftest import speech_like, tone


@pytest.mark.parametrize(
    "n_fft,hop,window", [(1022, 256, "hann"), (512, 128, "hann"), (256, 64, "hann"), (1024, 256, "hamming"),
                         (512, 256, "sqrt_hann")]
)
def test_istft_inverts_stft(n_fft, hop, window):
    waveform = torch.randn(2, 3, 16000 + 37, generator=torch.Generator().manual_seed(0)).clamp(-3, 3) / 3
    spectrogram = STFT(n_fft, hop, window)(waveform)
    assert spectrogram.shape == (2, 3, n_fft // 2 + 1, waveform.shape[-1] // hop + 1)
    restored = ISTFT(n_fft, hop, window)(spectrogram, waveform.shape[-1])
    assert (restored - waveform).abs().max() <= 1e-5


def test_magnitude_phase_round_trip():
    spectrogram = STFT(256, 64)(torch.randn(2000))
    magnitude, phase = magnitude_phase(spectrogram)
    assert torch.allclose(from_magnitude_phase(magnitude, phase), spectrogram, atol=1e-5)


def error_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    return 10 * np.log10(np.sum((estimate - reference) ** 2) / np.sum(reference**2))


@pytest.mark.parametrize("rates", [(16000, 48000), (48000, 16000), (22050, 16000), (16000, 44100), (44100, 48000)])
@pytest.mark.parametrize("signal_kind", ["speech", "tonal"])
def test_resample_matches_soxr(rates, signal_kind):
    rate, new_rate = rates
    base = speech_like(2.0) if signal_kind == "speech" else tone(440, 2.0) + tone(2900, 2.0, amplitude=0.3)
    signal = base if rate == 16000 else soxr.resample(base, 16000, rate, "VHQ").astype(np.float32)
    reference = soxr.resample(signal, rate, new_rate, "VHQ")
    estimate = Resample(rate, new_rate)(torch.from_numpy(signal)).numpy()
    assert estimate.shape == reference.shape
    assert error_db(estimate, reference) < -60


def test_resample_keeps_leading_dimensions():
    out = Resample(16000, 48000)(torch.randn(2, 3, 160))
    assert out.shape == (2, 3, 480)


def test_gradients_flow_through_resample_and_istft():
    resample = Resample(4, 6, zero_crossings=4).double()
    signal = torch.randn(1, 24, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(resample, (signal,))

    istft = ISTFT(16, 4).double()
    spectrogram = torch.randn(1, 9, 9, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: istft(s, 32), (spectrogram,))

    magnitude = torch.rand(9, 9, dtype=torch.float64, requires_grad=True)
    phase = torch.rand(9, 9, dtype=torch.float64)
    chain = lambda m: Resample(16, 48, zero_crossings=4).double()(istft(from_magnitude_phase(m, phase), 32))
    assert torch.autograd.gradcheck(chain, (magnitude,))
    gradient = torch.autograd.grad(chain(magnitude).pow(2).sum(), magnitude)[0]
    assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0
