import pytest
import torch

from bisep.separator.apply import Segmentation, SegmentedStream, apply_segmented


def identity(pieces: torch.Tensor) -> torch.Tensor:
    """``(channels, n)`` -> ``(channels, 1, n)``: one 'prompt' that returns the input."""
    return pieces[:, None]


def scaled_by_segment_mean(pieces: torch.Tensor) -> torch.Tensor:
    """A model whose output depends on the whole segment, so wrong segment boundaries change the result."""
    return torch.stack([pieces * pieces.mean(-1, keepdim=True), pieces.flip(-1)], dim=1)


def test_segments_cover_the_input_and_the_last_ends_at_the_end():
    segmentation = Segmentation(segment=100, hop=75)
    assert segmentation.starts(100) == [0]
    assert segmentation.starts(60) == [0]
    assert segmentation.starts(301) == [0, 75, 150, 201]
    assert segmentation.starts(250) == [0, 75, 150]


def test_window_fades_linearly_over_the_overlap_and_never_reaches_zero():
    window = Segmentation(segment=8, hop=5).window()
    assert torch.allclose(window, torch.tensor([0.25, 0.5, 0.75, 1, 1, 0.75, 0.5, 0.25]))
    assert torch.equal(Segmentation(segment=8, hop=8).window(), torch.ones(8))


def test_from_seconds_keeps_the_minimum_length():
    assert Segmentation.from_seconds(16000, 1.0, 0.25) == Segmentation(16000, 12000)
    assert Segmentation.from_seconds(100, 0.01, 0.5, minimum=64) == Segmentation(64, 32)


@pytest.mark.parametrize("total", [1, 99, 100, 101, 374, 1000])
@pytest.mark.parametrize("hop", [1, 40, 75, 100])
def test_overlap_add_of_an_identity_model_is_exact(total, hop):
    waveform = torch.randn(3, total, generator=torch.Generator().manual_seed(total))
    output = apply_segmented(identity, waveform, Segmentation(segment=100, hop=hop))
    assert output.shape == (3, 1, total)
    torch.testing.assert_close(output[:, 0], waveform, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("block", [1, 7, 64, 100, 333, 5000])
@pytest.mark.parametrize("total", [50, 100, 101, 1234])
def test_streaming_gives_the_one_shot_output(block, total):
    waveform = torch.randn(2, total, generator=torch.Generator().manual_seed(block))
    segmentation = Segmentation(segment=100, hop=70)
    whole = apply_segmented(scaled_by_segment_mean, waveform, segmentation)
    stream = SegmentedStream(scaled_by_segment_mean, segmentation)
    pieces = [stream.push(waveform[:, start:start + block]) for start in range(0, total, block)]
    pieces.append(stream.finish())
    streamed = torch.cat([piece for piece in pieces if piece.shape[-1]], dim=-1)
    assert streamed.shape == whole.shape == (2, 2, total)
    torch.testing.assert_close(streamed, whole, atol=1e-6, rtol=1e-6)


def test_streaming_memory_stays_bounded_by_the_segment():
    segmentation = Segmentation(segment=100, hop=50)
    stream = SegmentedStream(identity, segmentation)
    returned = 0
    for _ in range(200):
        returned += stream.push(torch.ones(1, 37)).shape[-1]
        assert stream._input.shape[-1] <= segmentation.segment + 37
        assert stream._sum is None or stream._sum.shape[-1] <= 2 * segmentation.segment
    returned += stream.finish().shape[-1]
    assert returned == 200 * 37


def test_progress_counts_segments_and_knows_the_total():
    calls = []
    apply_segmented(identity, torch.zeros(2, 301), Segmentation(100, 75),
                    progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_finished_stream_refuses_more_input():
    stream = SegmentedStream(identity, Segmentation(10, 5))
    stream.push(torch.zeros(1, 3))
    stream.finish()
    with pytest.raises(RuntimeError):
        stream.push(torch.zeros(1, 3))
