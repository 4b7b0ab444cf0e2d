import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from torch.utils.data import DataLoader

from bisep.audio import load_audio
from bisep.data.format import DatasetError, write_dataset
from bisep.data.sampling import (
    CompositionMixtures,
    MixtureOfMixtures,
    SingleSourceMixtures,
    collate_mixtures,
    draw_phrases,
)
from bisep.errors import BisepError

RATE = 16000
CORPUS = Path("/tmp/corpus-small")

# id -> (labels, phrases, samples); phrase counts 0..4 exercise the repeat weights.
TRAIN = {
    "train-00": (["dog", "bird"], ["a dog barks", "birds chirp"], 4800),
    "train-01": (["siren", "speech"], ["a siren wails", "a man speaks"], 6400),
    "train-02": (["rain"], ["rain falls"], 3200),
    "train-03": (["car", "horn", "engine"], ["a car passes", "a horn honks", "an engine idles"], 4000),
    "train-04": (["dog"], [], 5600),
    "train-05": (["bell", "wind", "rain", "speech"], ["a bell rings", "wind blows", "rain falls", "a man speaks"],
                 4800),
    "train-06": (["bird"], ["birds chirp", "birds chirp"], 4000),
    "train-07": (["engine", "siren"], ["an engine idles", "a siren wails"], 6400),
    "train-corrupt": (["door"], ["a door slams"], 4000),
    "train-08": (["water"], ["water drips"], 3600),
    "train-09": (["guitar", "drums"], ["a guitar plays", "drums beat"], 4800),
    "train-missing": (["cat"], ["a cat meows"], 4000),
    "train-10": (["piano", "bird"], ["a piano plays", "birds chirp"], 5200),
    "train-11": (["clock", "wind"], ["a clock ticks", "wind blows"], 4400),
}
SUP = {f"sup-{n:02d}": ([label], [f"the sound of {label}"], 4000 + 400 * n)
       for n, label in enumerate(["dog", "bird", "siren", "rain", "dog", "piano"])}
VALID = {f"valid-{n:02d}": ([label], [f"the sound of {label}"], 3200 + 800 * n)
         for n, label in enumerate(["bell", "car", "water", "guitar"])}
BAD_SHARE = 0.2  # the two unreadable train files are 1/7 of the split


def write_fixture(folder: Path) -> None:
    rng = np.random.default_rng(0)
    clips = {}
    for split, table in (("train", TRAIN), ("train_sup", SUP), ("valid", VALID)):
        for clip_id, (labels, phrases, samples) in table.items():
            audio = f"audio/{split}/{clip_id}.wav"
            caption = (" while ".join(phrases) or " and ".join(labels)).capitalize() + "."
            clips[clip_id] = {"id": clip_id, "audio": audio, "caption": caption, "phrases": phrases,
                              "labels": labels, "duration": samples / RATE}
            path = folder / audio
            path.parent.mkdir(parents=True, exist_ok=True)
            if clip_id == "train-corrupt":
                path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage, not audio")
            elif clip_id != "train-missing":
                time = np.arange(samples) / RATE
                wave = 0.4 * np.sin(2 * np.pi * rng.uniform(200, 2000) * time)
                wave += 0.05 * rng.standard_normal(samples)
                soundfile.write(path, wave.astype(np.float32), RATE)
    write_dataset(
        folder, clips, {"train": list(TRAIN), "train_sup": list(SUP), "valid": list(VALID)},
        {"valid_2": [["valid-00", "valid-01"], ["valid-02", "valid-03"]],
         "valid_3": [["valid-00", "valid-01", "valid-03"]],
         "broken_2": [["valid-00", "valid-01"], ["valid-02", "train-corrupt"], ["valid-01", "valid-03"]]},
        {"generator": "test"}, RATE)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sampling") / "dataset"
    write_fixture(folder)
    return folder


def read(root: Path, clip_id: str) -> torch.Tensor:
    split = "train" if clip_id.startswith("train-") else "valid"
    return load_audio(root / "audio" / split / f"{clip_id}.wav", sample_rate=RATE, channels=1)[0][0]


def assert_same_item(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for key, value in first.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, second[key]), key
        else:
            assert value == second[key], key


def test_clips_are_each_clips_share_of_the_mixture(root):
    dataset = MixtureOfMixtures(root, max_failure_share=BAD_SHARE)
    for index in range(len(dataset)):
        item = dataset[index]
        clips, gains = item["clips"], item["gains"]
        assert clips.dtype == torch.float32 and clips.shape[0] == 2
        torch.testing.assert_close(clips.sum(0), item["mixture"], rtol=0, atol=1e-7)
        assert ((gains >= 0.5) & (gains <= 1.5)).all()
        for clip, gain, clip_id in zip(clips, gains, item["clip_ids"]):
            wave = read(root, clip_id)
            torch.testing.assert_close(clip[:len(wave)], wave * gain / 2, rtol=1e-6, atol=1e-7)
            assert not clip[len(wave):].any()  # whole clips, padded with zeros to the longest


def test_segments_are_windows_of_the_scaled_clips(root):
    dataset = MixtureOfMixtures(root, segment_samples=4000, max_failure_share=BAD_SHARE)
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["mixture"].shape == (4000,) and item["clips"].shape == (2, 4000)
        for clip, gain, clip_id in zip(item["clips"], item["gains"], item["clip_ids"]):
            scaled = read(root, clip_id) * gain / 2
            if len(scaled) < 4000:
                torch.testing.assert_close(clip, torch.nn.functional.pad(scaled, (0, 4000 - len(scaled))))
            else:
                windows = scaled.unfold(0, 4000, 1)
                assert (windows - clip).abs().amax(1).min() < 1e-7


def test_first_clip_is_the_items_clip_and_no_label_is_shared(root):
    dataset = MixtureOfMixtures(root, clips_per_mixture=3, length=20, max_failure_share=BAD_SHARE)
    ids = list(TRAIN)
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            item = dataset[index]
            anchor = ids[index % len(ids)]
            assert (item["clip_ids"][0] == anchor) == (anchor not in ("train-corrupt", "train-missing"))
            labels = [set(TRAIN[clip_id][0]) for clip_id in item["clip_ids"]]
            assert len(set(item["clip_ids"])) == 3
            assert sum(len(group) for group in labels) == len(set().union(*labels))
    with pytest.raises(IndexError):
        dataset[20]


def test_phrases_and_repeat_weights(root):
    dataset = MixtureOfMixtures(root, phrases_per_clip=3, max_failure_share=BAD_SHARE)
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["repeat_weights"].shape == (2, 3)
        for clip_id, caption, phrases, weights in zip(item["clip_ids"], item["captions"], item["phrases"],
                                                      item["repeat_weights"]):
            known = TRAIN[clip_id][1] or [caption]
            assert len(phrases) == 3 and set(phrases) <= set(known)
            totals = {phrase: 0.0 for phrase in phrases}
            for phrase, weight in zip(phrases, weights.tolist()):
                totals[phrase] += weight
            assert all(total == pytest.approx(1.0) for total in totals.values())


def test_a_clip_with_more_sounds_than_phrases_drawn_is_marked_incomplete(root):
    seen = {}
    for count in (1, 3):
        dataset = MixtureOfMixtures(root, phrases_per_clip=count, max_failure_share=BAD_SHARE)
        for index in range(len(dataset)):
            item = dataset[index]
            expected = [len(set(TRAIN[clip_id][1])) <= count for clip_id in item["clip_ids"]]
            assert item["phrases_complete"].tolist() == expected
            seen.setdefault(count, []).extend(expected)
    assert not all(seen[1]) and any(seen[1])  # the test data hold both kinds


def test_draw_phrases():
    rng = np.random.default_rng(0)
    assert draw_phrases(["a", "b"], "A and b.", 3, rng) == (["a", "b", "a"], [0.5, 1.0, 0.5])
    assert draw_phrases(["a", "a"], "A.", 2, rng) == (["a", "a"], [0.5, 0.5])
    assert draw_phrases([], "A dog barks.", 3, rng) == (["A dog barks."] * 3, [1 / 3] * 3)
    subset, weights = draw_phrases(["a", "b", "c", "d", "e"], "Five.", 3, rng)
    assert len(set(subset)) == 3 and weights == [1.0, 1.0, 1.0]
    assert subset == sorted(subset)  # kept in caption order


def test_same_seed_and_epoch_give_the_same_items(root):
    first = MixtureOfMixtures(root, segment_samples=3000, max_failure_share=BAD_SHARE, seed=3)
    second = MixtureOfMixtures(root, segment_samples=3000, max_failure_share=BAD_SHARE, seed=3)
    other_seed = MixtureOfMixtures(root, segment_samples=3000, max_failure_share=BAD_SHARE, seed=4)
    for index in range(len(first)):
        assert_same_item(first[index], second[index])
    epoch_0 = [first[index] for index in range(len(first))]
    first.set_epoch(1)
    epoch_1 = [first[index] for index in range(len(first))]
    for draws in (epoch_1, [other_seed[index] for index in range(len(other_seed))]):
        assert any(a["clip_ids"] != b["clip_ids"] for a, b in zip(epoch_0, draws))
        assert all(not torch.equal(a["gains"], b["gains"]) for a, b in zip(epoch_0, draws))


def test_unreadable_files_are_skipped_counted_and_logged_once(root, caplog):
    dataset = MixtureOfMixtures(root, max_failure_share=BAD_SHARE)
    bad = {str(root / "audio/train/train-corrupt.wav"), str(root / "audio/train/train-missing.wav")}
    with caplog.at_level(logging.WARNING, logger="bisep.data.sampling"):
        items = [dataset[index] for _ in range(2) for index in range(len(dataset))]
    assert set(dataset.failures) == bad
    assert "file not found" in dataset.failures[str(root / "audio/train/train-missing.wav")]
    assert "corrupt" in dataset.failures[str(root / "audio/train/train-corrupt.wav")]
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2 and all(sum(path in message for message in messages) == 1 for path in bad)
    assert all(not set(item["clip_ids"]) & {"train-corrupt", "train-missing"} for item in items)
    anchors = [items[list(TRAIN).index(clip_id)] for clip_id in ("train-corrupt", "train-missing")]
    assert all(item["skipped"] and {path for path, _ in item["skipped"]} <= bad for item in anchors)


def test_too_many_failures_raise_one_line(root):
    dataset = MixtureOfMixtures(root)  # 5 % of 14 files allowed: the first unreadable one is too many
    with pytest.raises(BisepError) as raised:
        for index in range(len(dataset)):
            dataset[index]
    assert "1 of 14 audio files of split 'train'" in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(BisepError, match="unreadable"):
        list(DataLoader(MixtureOfMixtures(root), batch_size=4, num_workers=1, collate_fn=collate_mixtures))


def test_workers_give_the_same_batches_and_report_failures(root):
    def batches(dataset, loader, epoch):
        dataset.set_epoch(epoch)
        return list(loader)

    reference = MixtureOfMixtures(root, segment_samples=3000, max_failure_share=BAD_SHARE)
    parallel = MixtureOfMixtures(root, segment_samples=3000, max_failure_share=BAD_SHARE)
    serial_loader = DataLoader(reference, batch_size=4, collate_fn=collate_mixtures)
    parallel_loader = DataLoader(parallel, batch_size=4, num_workers=2, persistent_workers=True,
                                 collate_fn=collate_mixtures)
    for epoch in range(2):
        expected, got = batches(reference, serial_loader, epoch), batches(parallel, parallel_loader, epoch)
        assert len(expected) == len(got) == 4
        for serial_batch, parallel_batch in zip(expected, got):
            assert_same_item(serial_batch, parallel_batch)
        assert parallel.failures == {}  # the workers' copies saw the failures
        for batch in got:
            parallel.record_skipped(batch["skipped"])
        assert parallel.failures == reference.failures and len(parallel.failures) == 2
        parallel.failures.clear()


def test_collate_shapes(root):
    dataset = MixtureOfMixtures(root, clips_per_mixture=3, phrases_per_clip=2, segment_samples=2000,
                                max_failure_share=BAD_SHARE)
    batch = collate_mixtures([dataset[index] for index in range(5)])
    assert batch["mixture"].shape == (5, 2000)
    assert batch["clips"].shape == (5, 3, 2000)
    assert batch["repeat_weights"].shape == (5, 3, 2)
    assert len(batch["phrases"]) == 5 and all(len(p) == 3 and all(len(q) == 2 for q in p)
                                              for p in batch["phrases"])
    assert len(batch["captions"]) == 5 and isinstance(batch["captions"][0][0], str)
    whole = MixtureOfMixtures(root, max_failure_share=BAD_SHARE)
    with pytest.raises(BisepError, match="segment_samples"):
        collate_mixtures([whole[0], whole[2]])


def test_single_source_mixtures(root):
    dataset = SingleSourceMixtures(root, segment_samples=3000, seed=1)
    for index in range(len(dataset)):
        item = dataset[index]
        torch.testing.assert_close(item["sources"].sum(0), item["mixture"], rtol=0, atol=1e-7)
        assert item["prompts"] == [SUP[clip_id][1][0] for clip_id in item["clip_ids"]]
        assert SUP[item["clip_ids"][0]][0] != SUP[item["clip_ids"][1]][0]
    with pytest.raises(DatasetError, match="more than one source"):
        SingleSourceMixtures(root, split="train")


def test_composition_mixtures(root):
    dataset = CompositionMixtures(root, "valid_3")
    item = dataset[0]
    waves = [read(root, clip_id) for clip_id in ("valid-00", "valid-01", "valid-03")]
    assert item["sources"].shape == (3, len(waves[2]))
    for source, wave in zip(item["sources"], waves):
        torch.testing.assert_close(source[:len(wave)], wave / 3)
    torch.testing.assert_close(item["mixture"], item["sources"].sum(0))
    assert item["prompts"] == ["the sound of bell", "the sound of car", "the sound of guitar"]
    assert item["composition_id"] == "valid_3-000000"
    assert_same_item(item, CompositionMixtures(root, "valid_3")[0])
    assert CompositionMixtures(root, "valid_2", segment_samples=1000)[1]["sources"].shape == (2, 1000)


def test_composition_with_an_unreadable_clip_is_dropped(root):
    dataset = CompositionMixtures(root, "broken_2", max_failure_share=0.3)
    assert [name for name, _ in dataset.compositions] == ["broken_2-000000", "broken_2-000002"]
    assert dataset.skipped_compositions == ["broken_2-000001"]
    assert list(dataset.failures) == [str(root / "audio/train/train-corrupt.wav")]
    with pytest.raises(BisepError, match="1 of 5 audio files"):
        CompositionMixtures(root, "broken_2")


@pytest.mark.skipif(not (CORPUS / "annotations.json").is_file(), reason=f"needs the built corpus at {CORPUS}")
def test_built_corpus():
    dataset = MixtureOfMixtures(CORPUS, segment_samples=16000)
    batch = collate_mixtures([dataset[0], dataset[1]])
    assert batch["clips"].shape == (2, 2, 16000) and batch["repeat_weights"].shape == (2, 2, 3)
    torch.testing.assert_close(batch["clips"].sum(1), batch["mixture"], rtol=0, atol=1e-7)
    labels = [[set(dataset.folder.clips[clip_id]["labels"]) for clip_id in ids] for ids in batch["clip_ids"]]
    assert all(not first & second for first, second in labels)
    evaluation = CompositionMixtures(CORPUS, "valid_2")
    item = evaluation[0]
    assert len(evaluation) == 200 and item["sources"].shape[0] == 2
    torch.testing.assert_close(item["mixture"], item["sources"].sum(0))
