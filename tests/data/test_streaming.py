import itertools
import logging
import tarfile

import pytest
import torch

from bisep.data.sampling import MixtureOfMixtures
from bisep.data.shards import ShardOptions, write_shards
from bisep.data.streaming import StreamedMixtureOfMixtures, StreamedSingleSourceMixtures
from bisep.errors import BisepError

SEGMENT = 4000


@pytest.fixture(scope="module")
def shards_folder(labelled_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("streaming") / "shards"
    write_shards(labelled_dataset, out, ShardOptions(clips_per_shard=3, seed=0))  # 7 shards of 20 clips
    write_shards(labelled_dataset, out, ShardOptions(split="train_sup", clips_per_shard=2))
    return out


def streamed(folder, **options):
    return StreamedMixtureOfMixtures(folder, segment_samples=SEGMENT, shuffle_buffer=6, **options)


def ids_of(batches):
    return [tuple(ids) for batch in batches for ids in batch["clip_ids"]]


def test_ranks_and_workers_read_disjoint_shards_covering_the_split(shards_folder):
    dataset = streamed(shards_folder)
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        slots = [dataset.shards_of_slot(slot, 4) for slot in range(4)]  # 2 ranks x 2 workers
        names = [shard["name"] for shards in slots for shard in shards]
        assert sorted(names) == [f"train-{k:06d}.tar" for k in range(7)]
        clips = [sample.record["id"] for slot in range(4) for sample in dataset.clips(slot, 4, rounds=1)]
        assert sorted(clips) == [f"train-{k:03d}" for k in range(20)]
    deals = set()
    for epoch in range(5):
        dataset.set_epoch(epoch)
        deals.add(tuple(shard["name"] for shard in dataset.shards_of_slot(0, 4)))
    assert len(deals) > 1  # each epoch deals the shards anew


def test_two_ranks_with_two_workers_stream_disjoint_clips(shards_folder):
    seen = []
    for rank in (0, 1):
        dataset = streamed(shards_folder, rank=rank, world_size=2)
        readable = {sample.record["id"] for slot in (2 * rank, 2 * rank + 1)
                    for sample in dataset.clips(slot, 4, rounds=1)}
        batches = list(itertools.islice(dataset.loader(batch_size=2, workers=2), 6))
        clips = {clip_id for ids in ids_of(batches) for clip_id in ids}
        assert clips <= readable
        seen.append(clips)
    assert not seen[0] & seen[1]


def test_items_are_mixtures_of_mixtures(shards_folder, labelled_dataset):
    dataset = streamed(shards_folder, phrases_per_clip=3)
    item = next(iter(dataset))
    reference = MixtureOfMixtures(labelled_dataset, segment_samples=SEGMENT, phrases_per_clip=3)[0]
    assert set(item) == set(reference)
    for key, value in reference.items():
        if isinstance(value, torch.Tensor):
            assert item[key].shape == value.shape and item[key].dtype == value.dtype
    assert torch.allclose(item["clips"].sum(0), item["mixture"])
    first, second = item["clip_ids"]
    assert first != second and item["skipped"] == []


def test_no_mixture_shares_a_label(shards_folder, labelled_dataset):
    from bisep.data.format import Dataset

    clips = Dataset.open(labelled_dataset).clips
    for ids in ids_of(itertools.islice(streamed(shards_folder).loader(batch_size=4, workers=0), 5)):
        assert not set(clips[ids[0]]["labels"]) & set(clips[ids[1]]["labels"])


def test_same_seed_same_stream_other_epoch_other_stream(shards_folder):
    def first_batches(epoch, seed=0, workers=0):
        dataset = streamed(shards_folder, seed=seed)
        dataset.set_epoch(epoch)
        return list(itertools.islice(dataset.loader(batch_size=2, workers=workers), 5))

    once, again = first_batches(0), first_batches(0)
    assert ids_of(once) == ids_of(again)
    assert all(torch.equal(a["mixture"], b["mixture"]) for a, b in zip(once, again))
    assert ids_of(first_batches(1)) != ids_of(once)
    assert ids_of(first_batches(0, seed=1)) != ids_of(once)
    assert ids_of(first_batches(0, workers=2)) == ids_of(first_batches(0, workers=2))


def test_skipping_batches_resumes_the_stream_exactly(shards_folder):
    dataset = streamed(shards_folder)
    full = list(itertools.islice(dataset.loader(batch_size=2, workers=2), 7))
    resumed = list(itertools.islice(dataset.loader(batch_size=2, workers=2, skip_batches=3), 4))
    assert ids_of(resumed) == ids_of(full[3:])
    assert all(torch.equal(a["mixture"], b["mixture"]) for a, b in zip(resumed, full[3:]))
    in_process = list(itertools.islice(dataset.loader(batch_size=2, workers=0), 5))
    skipping = dataset.loader(batch_size=2, workers=0, skip_batches=2)
    assert ids_of(itertools.islice(skipping, 3)) == ids_of(in_process[2:])


def test_epoch_length_and_first_batches(shards_folder):
    assert len(streamed(shards_folder)) == 20 and len(streamed(shards_folder, length=8)) == 8
    dataset = streamed(shards_folder)
    first = list(dataset.first_batches(2, 3))
    assert len(first) == 3 and ids_of(first) == ids_of(list(dataset.first_batches(2, 3)))


def corrupt_one_audio_member(folder, shard_name):
    """Overwrite the first audio member of a shard with garbage of the same length (the index still fits)."""
    path = folder / shard_name
    with tarfile.open(path) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith(".flac"))
    data = bytearray(path.read_bytes())
    data[member.offset_data:member.offset_data + member.size] = b"\x07" * member.size
    path.write_bytes(bytes(data))
    return f"{path}:{member.name.split('.')[0]}"


def test_a_corrupt_member_is_skipped_counted_and_logged_once(labelled_dataset, tmp_path, caplog):
    out = tmp_path / "shards"
    write_shards(labelled_dataset, out, ShardOptions(clips_per_shard=20))
    where = corrupt_one_audio_member(out, "train-000000.tar")
    dataset = StreamedMixtureOfMixtures(out, segment_samples=SEGMENT, shuffle_buffer=20, max_failure_share=0.1)
    with caplog.at_level(logging.WARNING, logger="bisep.data.sampling"):
        items = list(itertools.islice(iter(dataset), 40))
    skipped = [entry for item in items for entry in item["skipped"]]
    assert skipped and {w for w, _ in skipped} == {where}
    assert "corrupt" in skipped[0][1] and list(dataset.failures) == [where]
    assert where.split(":")[1] not in {ids for item in items for ids in item["clip_ids"]}
    assert sum("skipping unreadable audio" in r.message for r in caplog.records) == 1
    parallel = StreamedMixtureOfMixtures(out, segment_samples=SEGMENT, shuffle_buffer=20)
    for batch in itertools.islice(parallel.loader(batch_size=4, workers=1), 10):
        parallel.record_skipped(batch["skipped"])
    assert list(parallel.failures) == [where]  # the worker's failures, counted in the main process
    strict = StreamedMixtureOfMixtures(out, segment_samples=SEGMENT, shuffle_buffer=20, max_failure_share=0.0)
    with pytest.raises(BisepError, match="1 of 20 audio files of shards 'train' are unreadable"):
        list(itertools.islice(iter(strict), 40))


def test_a_broken_tar_is_skipped_and_counted(labelled_dataset, tmp_path):
    out = tmp_path / "shards"
    index = write_shards(labelled_dataset, out, ShardOptions(clips_per_shard=10))
    path = out / index["shards"][1]["name"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2:len(data) // 2 + 1024] = b"\x00" * 1024  # a zeroed region: the tar ends early
    path.write_bytes(bytes(data))
    dataset = StreamedMixtureOfMixtures(out, segment_samples=SEGMENT, shuffle_buffer=4, max_failure_share=0.2)
    items = list(itertools.islice(iter(dataset), 30))
    assert len(items) == 30 and all(len(item["clip_ids"]) == 2 for item in items)
    assert list(dataset.failures) == [str(path)] and "of its 10 clips" in dataset.failures[str(path)]
    assert (str(path), dataset.failures[str(path)]) in [entry for item in items for entry in item["skipped"]]
    clips = [sample.record["id"] for sample in dataset.clips(0, 1, rounds=1) if not isinstance(sample, list)]
    assert 10 < len(clips) < 20


def test_single_source_streaming(shards_folder):
    dataset = StreamedSingleSourceMixtures(shards_folder, "train_sup", segment_samples=SEGMENT, shuffle_buffer=4)
    item = next(iter(dataset))
    assert set(item) == {"mixture", "sources", "gains", "prompts", "clip_ids", "skipped"}
    assert item["prompts"][0].startswith("a ") and torch.allclose(item["sources"].sum(0), item["mixture"])
    with pytest.raises(BisepError, match="more than one source"):
        StreamedSingleSourceMixtures(shards_folder, "train", segment_samples=SEGMENT)


def test_too_few_shards_for_ranks_and_workers(shards_folder):
    with pytest.raises(BisepError, match="7 shards of 'train' cannot feed 2 ranks x 4 workers"):
        streamed(shards_folder, world_size=2).loader(batch_size=2, workers=4)
