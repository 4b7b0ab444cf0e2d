"""The trainer on a tiny corpus with tiny models: every mode, exact resume, accumulation = DDP (gloo)."""

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from bisep.cli import run
from bisep.config import load_config
from bisep.grounding.builtin import BuiltinGrounding, BuiltinGroundingConfig
from bisep.model_folder import read_model_folder
from bisep.train.training_state import read_training_state
from bisep.train.config import TrainConfig
from bisep.train.trainer import Trainer


@pytest.fixture(scope="module")
def grounding_folder(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("grounding") / "g"
    BuiltinGrounding(BuiltinGroundingConfig(embedding_dim=16, channels=[4, 4, 4, 4])).save(folder)
    return folder


def write_config(path, corpus, grounding, out, **overrides):
    config = {
        "mode": "weak", "grounding": str(grounding), "out": str(out), "epochs": 2, "seed": 5,
        "checkpoint_every_epochs": 1, "threads": 1, "audio_examples": 1,
        "model": {"num_downs": 4, "base_channels": 4, "out_channels": 4, "heads": 1, "token_dim": 384,
                  "embedding_dim": 16, "n_fft": 254, "hop_length": 64},
        "data": {"corpus": str(corpus), "segment_seconds": 0.5, "phrases_per_clip": 2, "items_per_epoch": 8,
                 "validation_items": 4},
        "optim": {"batch_size": 2, "learning_rate": 1e-3},
    }
    for key, value in overrides.items():
        section, _, name = key.partition("__")
        if name:
            config[section][name] = value
        else:
            config[key] = value
    path.write_text(yaml.safe_dump(config))
    return path


def history(out):
    return [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("mode", ["unsupervised", "weak", "supervised", "semi"])
def test_every_mode_trains_and_checkpoints(mode, tiny_corpus, grounding_folder, tmp_path):
    config = load_config(TrainConfig, write_config(tmp_path / "c.yaml", tiny_corpus, grounding_folder,
                                                   tmp_path / "run", mode=mode))
    summary = Trainer(config, log=lambda *_: None).run()
    assert summary["global_step"] == 8 and summary["epochs"] == 2
    records = history(tmp_path / "run")
    steps = [r for r in records if "loss" in r]
    expected = {"unsupervised": {"mix_and_separate"}, "weak": {"mix_and_separate", "consistency", "contrastive"},
                "supervised": {"supervised"}, "semi": {"supervised", "mix_and_separate", "consistency", "contrastive"}}
    assert expected[mode] <= set(steps[0]) and all(torch.isfinite(torch.tensor(r["loss"])) for r in steps)
    assert any("validation_sdr" in r for r in records)
    meta, tensors = read_model_folder(tmp_path / "run" / "checkpoints" / "best")
    assert meta["provenance"]["mode"] == mode and tensors
    state = read_training_state(tmp_path / "run" / "checkpoints" / "latest")
    assert state["epoch"] == 2 and state["global_step"] == 8
    assert (tmp_path / "run" / "checkpoints" / "epoch0001" / "model.safetensors").is_file()
    assert list((tmp_path / "run" / "tensorboard").iterdir())


def test_weak_without_the_contrastive_term_skips_the_audio_tower(tiny_corpus, grounding_folder, tmp_path,
                                                                 monkeypatch):
    config = load_config(TrainConfig, write_config(tmp_path / "c.yaml", tiny_corpus, grounding_folder,
                                                   tmp_path / "run", epochs=1, loss={"contrastive": 0.0}))
    calls = []
    original = BuiltinGrounding.encode_audio
    monkeypatch.setattr(BuiltinGrounding, "encode_audio",
                        lambda self, *args, **kwargs: calls.append(1) or original(self, *args, **kwargs))
    Trainer(config, log=lambda *_: None).run(max_steps=2)
    steps = [r for r in history(tmp_path / "run") if "loss" in r]
    assert steps and {"mix_and_separate", "consistency"} <= set(steps[0]) and "contrastive" not in steps[0]
    assert not calls


def test_a_separator_refuses_a_grounding_model_with_other_text_features(tiny_corpus, grounding_folder, tmp_path):
    from bisep.errors import BisepError
    from bisep.separator.api import Separator

    config = load_config(TrainConfig, write_config(tmp_path / "c.yaml", tiny_corpus, grounding_folder,
                                                   tmp_path / "run", epochs=1, mode="supervised"))
    Trainer(config, log=lambda *_: None).run(max_steps=1)
    best = tmp_path / "run" / "checkpoints" / "best"
    assert Separator.from_pretrained(best, device="cpu").grounding.embedding_dim == 16
    torch.manual_seed(1)
    retrained = tmp_path / "retrained"
    BuiltinGrounding(BuiltinGroundingConfig(embedding_dim=16, channels=[4, 4, 4, 4])).save(retrained)
    with pytest.raises(BisepError, match="another grounding model's text features"):
        Separator.from_pretrained(best, device="cpu", grounding=str(retrained))


def test_resume_after_a_kill_reproduces_the_following_losses(tiny_corpus, grounding_folder, tmp_path):
    common = dict(checkpoint_every_steps=2, epochs=2)
    full = load_config(TrainConfig, write_config(tmp_path / "a.yaml", tiny_corpus, grounding_folder,
                                                 tmp_path / "full", **common))
    Trainer(full, log=lambda *_: None).run()
    killed = load_config(TrainConfig, write_config(tmp_path / "b.yaml", tiny_corpus, grounding_folder,
                                                   tmp_path / "killed", **common))
    Trainer(killed, log=lambda *_: None).run(max_steps=5)  # stops after step 5: the last checkpoint is step 4
    Trainer(killed, resume=True, log=lambda *_: None).run()
    expected = {r["step"]: r["loss"] for r in history(tmp_path / "full") if "loss" in r}
    records = [r for r in history(tmp_path / "killed") if "loss" in r]
    resumed = {r["step"]: r["loss"] for r in records}
    assert [r["step"] for r in records] == list(range(1, 9))  # step 5 of the stopped run is not kept twice
    assert sorted(resumed) == list(range(1, 9))
    for step, loss in resumed.items():
        assert loss == pytest.approx(expected[step], abs=1e-6)


def test_a_run_stopped_at_an_epochs_last_step_resumes_with_that_epochs_end(tiny_corpus, grounding_folder,
                                                                            tmp_path):
    """The latest checkpoint of an epoch's last step is written before the epoch's end (learning-rate step,
    validation, epoch checkpoint); a run killed during that validation must still do them on resume."""
    common = dict(checkpoint_every_steps=2, epochs=2, optim__decay_every_epochs=1, optim__decay_factor=0.5)
    full = load_config(TrainConfig, write_config(tmp_path / "a.yaml", tiny_corpus, grounding_folder,
                                                 tmp_path / "full", **common))
    Trainer(full, log=lambda *_: None).run()
    killed = load_config(TrainConfig, write_config(tmp_path / "b.yaml", tiny_corpus, grounding_folder,
                                                   tmp_path / "killed", **common))
    Trainer(killed, log=lambda *_: None).run(max_steps=4)  # stops right after step 4's checkpoint
    Trainer(killed, resume=True, log=lambda *_: None).run()
    expected, resumed = history(tmp_path / "full"), history(tmp_path / "killed")
    for key in ("loss", "learning_rate"):
        assert [r[key] for r in resumed if key in r] == pytest.approx([r[key] for r in expected if key in r], abs=1e-6)
    assert [r["epoch"] for r in resumed if "validation_sdr" in r] == [0, 1, 2]
    assert (tmp_path / "killed" / "checkpoints" / "epoch0001").is_dir()


def test_resume_applies_a_changed_learning_rate_schedule(tiny_corpus, grounding_folder, tmp_path):
    """A long run continued across sessions may lower its rate: the config's schedule wins on resume."""
    first = load_config(TrainConfig, write_config(tmp_path / "a.yaml", tiny_corpus, grounding_folder,
                                                  tmp_path / "run", epochs=2))
    Trainer(first, log=lambda *_: None).run()  # two epochs of 4 steps at 1e-3
    lowered = load_config(TrainConfig, write_config(tmp_path / "b.yaml", tiny_corpus, grounding_folder,
                                                    tmp_path / "run", epochs=4, optim__decay_every_epochs=2,
                                                    optim__decay_factor=0.1))
    lines = []
    Trainer(lowered, resume=True, log=lines.append).run()
    rates = {r["step"]: r["learning_rate"] for r in history(tmp_path / "run") if "loss" in r}
    assert rates[8] == pytest.approx(1e-3) and rates[9] == pytest.approx(1e-4) and rates[16] == pytest.approx(1e-4)
    assert any("schedule from the config" in line for line in lines)
    unchanged = load_config(TrainConfig, write_config(tmp_path / "c.yaml", tiny_corpus, grounding_folder,
                                                      tmp_path / "run", epochs=5, optim__decay_every_epochs=2,
                                                      optim__decay_factor=0.1))
    lines.clear()
    Trainer(unchanged, resume=True, log=lines.append).run()
    assert not any("schedule from the config" in line for line in lines)
    rates = {r["step"]: r["learning_rate"] for r in history(tmp_path / "run") if "loss" in r}
    assert rates[17] == pytest.approx(1e-5)  # epoch 4 (the fifth): the schedule goes on from where it was


def test_two_gloo_processes_equal_one_process_with_accumulation(tiny_corpus, grounding_folder, tmp_path):
    one = write_config(tmp_path / "one.yaml", tiny_corpus, grounding_folder, tmp_path / "one", epochs=1,
                       optim__accumulation=2, optim__batch_size=2)
    assert run(["train", str(one), "--max-steps", "2"]) == 0
    two = write_config(tmp_path / "two.yaml", tiny_corpus, grounding_folder, tmp_path / "two", epochs=1,
                       optim__batch_size=2)
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
         "-m", "bisep.cli", "train", str(two), "--max-steps", "2"],
        capture_output=True, text=True, env=environment, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    single = [r["loss"] for r in history(tmp_path / "one") if "loss" in r]
    distributed = [r["loss"] for r in history(tmp_path / "two") if "loss" in r]
    assert len(single) == len(distributed) == 2
    assert distributed == pytest.approx(single, abs=1e-5)


def test_config_errors_exit_2(tiny_corpus, grounding_folder, tmp_path, capsys):
    bad = write_config(tmp_path / "bad.yaml", tiny_corpus, grounding_folder, tmp_path / "x", epochz=3)
    assert run(["train", str(bad)]) == 2
    assert "unknown keys epochz" in capsys.readouterr().err
    mismatch = write_config(tmp_path / "m.yaml", tiny_corpus, grounding_folder, tmp_path / "y")
    assert run(["train", str(mismatch), "model.embedding_dim=64"]) == 2
    assert "embedding_dim=64" in capsys.readouterr().err
    assert run(["train", str(mismatch), "--resume"]) == 2
    assert "not a bisep model folder" in capsys.readouterr().err


def test_training_streams_from_shards(tiny_corpus, grounding_folder, tmp_path):
    from bisep.data.shards import ShardOptions, write_shards

    write_shards(tiny_corpus, tmp_path / "shards", ShardOptions(clips_per_shard=8))
    path = write_config(tmp_path / "c.yaml", tiny_corpus, grounding_folder, tmp_path / "run", mode="unsupervised",
                        data__shuffle_buffer=16)
    assert run(["train", str(path), f"data.shards={tmp_path / 'shards'}", "data.workers=2", "--max-steps", "2"]) == 0
    steps = [r for r in history(tmp_path / "run") if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2] and all(torch.isfinite(torch.tensor(r["loss"])) for r in steps)


def test_streamed_training_resumes_exactly(tiny_corpus, grounding_folder, tmp_path):
    from bisep.data.shards import ShardOptions, write_shards
    from bisep.data.streaming import StreamedMixtureOfMixtures

    write_shards(tiny_corpus, tmp_path / "shards", ShardOptions(clips_per_shard=8))
    common = dict(checkpoint_every_steps=2, epochs=1, optim__accumulation=2, data__shuffle_buffer=16,
                  data__shards=str(tmp_path / "shards"), data__items_per_epoch=16)
    full = load_config(TrainConfig, write_config(tmp_path / "a.yaml", tiny_corpus, grounding_folder,
                                                 tmp_path / "full", **common))
    trainer = Trainer(full, log=lambda *_: None)
    assert isinstance(trainer.datasets["natural"], StreamedMixtureOfMixtures) and trainer.steps_per_epoch == 4
    trainer.run()
    killed = load_config(TrainConfig, write_config(tmp_path / "b.yaml", tiny_corpus, grounding_folder,
                                                   tmp_path / "killed", **common))
    Trainer(killed, log=lambda *_: None).run(max_steps=3)  # the last save is step 2: resumes mid-epoch
    (tmp_path / "killed" / "history.jsonl").unlink()
    Trainer(killed, resume=True, log=lambda *_: None).run()
    expected = {r["step"]: r["loss"] for r in history(tmp_path / "full") if "loss" in r}
    resumed = {r["step"]: r["loss"] for r in history(tmp_path / "killed") if "loss" in r}
    assert sorted(resumed) == [3, 4]
    for step, loss in resumed.items():
        assert loss == pytest.approx(expected[step], abs=1e-6)


def test_semi_recalibrates_batch_norm_on_both_training_streams(tiny_corpus, grounding_folder, tmp_path):
    config = load_config(TrainConfig, write_config(tmp_path / "c.yaml", tiny_corpus, grounding_folder,
                                                   tmp_path / "run", mode="semi"))
    trainer = Trainer(config, log=lambda *_: None)
    calls = []

    class Recording(torch.utils.data.Dataset):
        def __init__(self, inner, name):
            self.inner, self.name = inner, name

        def __len__(self):
            return len(self.inner)

        def __getitem__(self, index):
            calls.append(self.name)
            return self.inner[index]

    trainer.datasets = {name: Recording(dataset, name) for name, dataset in trainer.datasets.items()}
    trainer.recalibrate_batch_norm(batches=4)
    assert calls.count("natural") == calls.count("single") == 2 * config.optim.batch_size


def test_batch_norm_is_recalibrated_on_the_queries_inference_uses():
    from bisep.train.trainer import inference_queries

    natural = {"captions": [["A dog barks and rain falls", "A bell"], ["Wind", "A car"]],
               "phrases": [[["a dog barks", "rain falls"], ["a bell rings", "a bell rings"]],
                           [["wind blows", "wind blows"], ["a car passes", "a car passes"]]]}
    assert inference_queries(natural) == ["a dog barks", "rain falls", "a bell rings",
                                          "wind blows", "a car passes", "a car passes"]
    assert inference_queries({"prompts": [["a", "b"], ["c", "d"]]}) == ["a", "b", "c", "d"]


def test_supervised_overfits_one_batch(tiny_corpus, grounding_folder, tmp_path):
    """The supervised path can learn: repeated steps on one fixed batch drive its loss far down (a broken
    target, mask or weight would leave it on a plateau)."""
    config = load_config(TrainConfig, write_config(tmp_path / "c.yaml", tiny_corpus, grounding_folder,
                                                   tmp_path / "run", mode="supervised", seed=0))
    trainer = Trainer(config, log=lambda *_: None)
    from bisep.data.sampling import collate_mixtures

    dataset = trainer.datasets["single"]
    batch = collate_mixtures([dataset[index] for index in range(4)])
    losses = [trainer.train_step([{"single": batch}])["supervised"] for _ in range(80)]
    assert min(losses[-5:]) < 0.35 * losses[0], losses[::10]
