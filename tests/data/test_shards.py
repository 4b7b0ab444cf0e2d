import json
import math
import shutil
import tarfile

import pytest
import torch

from bisep.audio import load_audio
from bisep.cli import run
from bisep.data import shards
from bisep.data.format import Dataset
from bisep.data.shards import ShardError, ShardIndex, ShardOptions, read_shard, write_shards
from bisep.files import sha256_file


def read_all(index: ShardIndex):
    problems = []
    samples = [sample for shard in index.shards
               for sample in read_shard(index.folder / shard["name"], lambda *problem: problems.append(problem))]
    return samples, problems


def test_round_trip_of_the_tiny_corpus(tiny_corpus, tmp_path):
    out = tmp_path / "shards"
    index = write_shards(tiny_corpus, out, ShardOptions(clips_per_shard=10, seed=4))
    dataset = Dataset.open(tiny_corpus)
    ids = dataset.split("train")
    assert index["clips"] == len(ids) and index["skipped"] == {} and not index["single_source"]
    assert [s["name"] for s in index["shards"]] == [f"train-{k:06d}.tar" for k in range(math.ceil(len(ids) / 10))]
    assert [s["clips"] for s in index["shards"]][:-1] == [10] * (len(index["shards"]) - 1)
    for shard in index["shards"]:
        assert sha256_file(out / shard["name"]) == shard["sha256"]
        assert (out / shard["name"]).stat().st_size == shard["bytes"]
    assert json.loads((out / "train-index.json").read_text()) == index
    samples, problems = read_all(ShardIndex.open(out, "train"))
    assert problems == []
    streamed = [sample.record["id"] for sample in samples]
    assert sorted(streamed) == sorted(ids) and streamed != ids  # every clip once, shuffled
    for sample in samples:
        clip_id = sample.record["id"]
        expected = {key: value for key, value in dataset.clips[clip_id].items() if key != "audio"}
        assert sample.record == expected
        assert sample.extension == "flac"  # the corpus is 16-bit wav: re-encoded losslessly
        source = load_audio(dataset.audio_path(clip_id))[0][0]
        assert torch.equal(sample.decode(dataset.sample_rate), source)


def test_members_follow_the_webdataset_layout(labelled_dataset, tmp_path):
    index = write_shards(labelled_dataset, tmp_path / "s", ShardOptions(clips_per_shard=8, keep_original=True))
    with tarfile.open(tmp_path / "s" / index["shards"][0]["name"]) as archive:
        members = archive.getmembers()
    assert [m.name for m in members[:4]] == ["000000000.json", "000000000.wav", "000000001.json", "000000001.wav"]
    assert {m.mtime for m in members} == {shards.MEMBER_TIME} and {m.uname for m in members} == {"bisep"}
    samples, _ = read_all(ShardIndex.open(tmp_path / "s", "train"))
    original = Dataset.open(labelled_dataset).audio_path(samples[0].record["id"]).read_bytes()
    assert samples[0].extension == "wav" and samples[0].audio == original


def test_same_seed_same_bytes_other_seed_other_order(labelled_dataset, tmp_path):
    first = write_shards(labelled_dataset, tmp_path / "a", ShardOptions(clips_per_shard=6, seed=1))
    again = write_shards(labelled_dataset, tmp_path / "b", ShardOptions(clips_per_shard=6, seed=1))
    other = write_shards(labelled_dataset, tmp_path / "c", ShardOptions(clips_per_shard=6, seed=2))
    assert first["shards"] == again["shards"]
    assert first["shards"][0]["sha256"] != other["shards"][0]["sha256"]


def test_size_limit_splits_shards(labelled_dataset, tmp_path):
    index = write_shards(labelled_dataset, tmp_path / "s", ShardOptions(shard_size_mb=0.05))
    assert len(index["shards"]) > 1 and index["clips"] == 20
    assert all(shard["bytes"] <= 50_000 + 10_240 for shard in index["shards"])  # tar pads to 10 KiB records


def test_interrupted_run_leaves_only_whole_shards_and_resumes(labelled_dataset, tmp_path, monkeypatch):
    options = ShardOptions(clips_per_shard=6, seed=3)
    reference = write_shards(labelled_dataset, tmp_path / "reference", options)
    encode = shards._encoded_sample

    def interrupted(dataset, clip_id, position, *rest):
        if position == 14:
            raise KeyboardInterrupt
        return encode(dataset, clip_id, position, *rest)

    monkeypatch.setattr(shards, "_encoded_sample", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        write_shards(labelled_dataset, out, options)
    assert sorted(p.name for p in out.iterdir()) == [".bisep-shard", "train-000000.tar", "train-000001.tar"]
    (out / ".train-000002.tar.abc.tmp.tar").write_bytes(b"left by a killed run")
    monkeypatch.setattr(shards, "_encoded_sample", encode)
    resumed = write_shards(labelled_dataset, out, options)
    assert resumed == reference
    assert sorted(p.name for p in out.iterdir()) == [".bisep-shard", "train-000000.tar", "train-000001.tar",
                                                     "train-000002.tar", "train-000003.tar", "train-index.json"]


def test_other_options_are_refused_unless_overwrite(labelled_dataset, tmp_path):
    write_shards(labelled_dataset, tmp_path / "s", ShardOptions(clips_per_shard=6))
    with pytest.raises(ShardError, match="other options"):
        write_shards(labelled_dataset, tmp_path / "s", ShardOptions(clips_per_shard=5))
    index = write_shards(labelled_dataset, tmp_path / "s", ShardOptions(clips_per_shard=5), overwrite=True)
    assert len(index["shards"]) == 4 and not (tmp_path / "s" / "train-000004.tar").exists()
    shutil.rmtree(tmp_path / "s" / ".bisep-shard")
    with pytest.raises(ShardError, match="did not record"):
        write_shards(labelled_dataset, tmp_path / "s", ShardOptions(clips_per_shard=5))


def test_unreadable_clips_are_left_out_and_listed(labelled_dataset, tmp_path):
    copy = tmp_path / "dataset"
    shutil.copytree(labelled_dataset, copy)
    (copy / "audio/train/train-004.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    (copy / "audio/train/train-007.wav").unlink()
    index = write_shards(copy, tmp_path / "s", ShardOptions(clips_per_shard=5))
    assert index["clips"] == 18 and sorted(index["skipped"]) == ["train-004", "train-007"]
    assert "corrupt" in index["skipped"]["train-004"] and "not found" in index["skipped"]["train-007"]
    samples, _ = read_all(ShardIndex.open(tmp_path / "s", "train"))
    assert len(samples) == 18 and "train-004" not in {s.record["id"] for s in samples}


def test_single_source_flag(labelled_dataset, tmp_path):
    index = write_shards(labelled_dataset, tmp_path / "s", ShardOptions(split="train_sup", clips_per_shard=4))
    assert index["single_source"] and (tmp_path / "s" / "train_sup-index.json").is_file()


def test_index_is_checked_against_the_shards(labelled_dataset, tmp_path):
    out = tmp_path / "s"
    index = write_shards(labelled_dataset, out, ShardOptions(clips_per_shard=6))
    path = out / index["shards"][1]["name"]
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ShardError, match="cut short"):
        ShardIndex.open(out, "train")
    with pytest.raises(ShardError, match="not found"):
        ShardIndex.open(out, "valid")


def test_command_line(labelled_dataset, tmp_path, capsys):
    out = tmp_path / "s"
    assert run(["data", "shard", str(labelled_dataset), "--out", str(out), "--clips-per-shard", "7"]) == 0
    assert "wrote 3 shards of split train (20 clips" in capsys.readouterr().out
    assert run(["data", "shard", str(labelled_dataset), "--out", str(out), "--clips-per-shard", "7",
                "--shard-size-mb", "1"]) == 2
    assert "not both" in capsys.readouterr().err
    assert run(["data", "shard", str(labelled_dataset), "--out", str(out), "--split", "nope"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("bisep: error:") and "nope.csv: not found" in error and error.count("\n") == 1
