"""What --model and --checkpoint may name: model folders, files in them, training runs (best, else latest, else the newest
epoch), shipped names; anything else is a one-line error."""

import pytest

from bisep.errors import BisepError
from bisep.separator.resolve import resolve_separator


def model_folder(path):
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(b"")
    return path


def test_model_folders_and_files_inside_them(tmp_path):
    folder = model_folder(tmp_path / "model")
    assert resolve_separator(folder) == str(folder)
    assert resolve_separator(folder / "model.safetensors") == str(folder)


def test_training_runs_prefer_best_then_latest_then_the_newest_epoch(tmp_path):
    run = tmp_path / "run"
    model_folder(run / "checkpoints" / "epoch0002")
    model_folder(run / "checkpoints" / "epoch0010")
    assert resolve_separator(run) == str(run / "checkpoints" / "epoch0010")
    model_folder(run / "checkpoints" / "latest")
    assert resolve_separator(run) == str(run / "checkpoints" / "latest")
    model_folder(run / "checkpoints" / "best")
    assert resolve_separator(run) == str(run / "checkpoints" / "best")
    assert resolve_separator(run / "checkpoints") == str(run / "checkpoints" / "best")


def test_names_pass_through_and_bad_paths_are_refused(tmp_path):
    assert resolve_separator("builtin") == "builtin"
    with pytest.raises(BisepError, match="no such model folder"):
        resolve_separator(tmp_path / "absent")
    (tmp_path / "empty-run").mkdir()
    with pytest.raises(BisepError, match="neither a model folder"):
        resolve_separator(tmp_path / "empty-run")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(BisepError, match="a file, not a model folder"):
        resolve_separator(tmp_path / "notes.txt")



def test_the_unittest_model_is_a_registered_name_with_a_model_folder():
    from bisep.model_folder import read_model_folder
    from bisep.pretrained import asset_folder, known_names

    assert {"builtin", "unittest"} <= set(known_names("separator"))
    folder = asset_folder("separator", "unittest")
    assert asset_folder("separator", "unittest") == folder  # built once per process
    meta, _ = read_model_folder(folder)
    assert meta["class"] == "TextQueriedSeparator" and meta["provenance"] == {"grounding_folder": "grounding"}
