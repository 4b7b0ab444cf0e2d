"""`bisep separate` through the CLI with the tiny `unittest` model: outputs, and every bad input."""

import numpy as np
import pytest
import soundfile

from bisep.cli import run
from conftest import tone


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    (folder / "nested").mkdir(parents=True)
    soundfile.write(folder / "song.wav", np.stack([tone(300, 1.0, 22050), tone(500, 1.0, 22050)], 1), 22050)
    soundfile.write(folder / "nested" / "speech.flac", tone(200, 0.5), 16000)
    return folder


def err_lines(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_folder_in_outputs_per_prompt_and_residual(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    status = run(["separate", str(inputs), "-q", "a violin", "-q", "Rain falling!", "-o", str(out),
                  "--model", "unittest", "--residual"])
    assert status == 0
    song, rate = soundfile.read(out / "song" / "a-violin.wav")
    assert rate == 22050 and song.shape == (22050, 2)
    assert (out / "song" / "rain-falling.wav").is_file() and (out / "song" / "residual.wav").is_file()
    assert soundfile.info(out / "speech" / "a-violin.wav").samplerate == 16000
    assert "song.wav: 1.0 s, 2 prompt(s)" in capsys.readouterr().out


def test_existing_outputs_need_overwrite(inputs, tmp_path, capsys):
    args = ["separate", str(inputs / "song.wav"), "-q", "x", "-o", str(tmp_path / "o"), "--model", "unittest"]
    assert run(args) == 0
    before = (tmp_path / "o" / "song" / "x.wav").read_bytes()
    assert run(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "o" / "song" / "x.wav").read_bytes() == before
    assert run(args + ["--overwrite"]) == 0


def make(kind, folder):
    path = folder / f"{kind}.wav"
    if kind == "corrupt":
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "nan":
        soundfile.write(path, np.array([0.1, np.nan] * 800, np.float32), 16000, subtype="FLOAT")
    elif kind == "missing":
        pass
    return path


def test_bad_files_fail_alone_and_the_summary_names_them(inputs, tmp_path, capsys):
    bad = [make(kind, tmp_path) for kind in ("missing", "corrupt", "empty", "nan")]
    status = run(["separate", *map(str, bad), str(inputs / "song.wav"), "-q", "a dog", "-o", str(tmp_path / "o"),
                  "--model", "unittest"])
    lines = err_lines(capsys)
    assert status == 2
    assert any("file not found" in line for line in lines)
    assert any("corrupt" in line for line in lines)
    assert any("empty" in line for line in lines)
    assert any("NaN" in line for line in lines)
    assert "4 of 5 inputs failed" in lines[-1]
    assert (tmp_path / "o" / "song" / "a-dog.wav").is_file()


def test_silent_file_warns_and_writes_silence(tmp_path, capsys):
    soundfile.write(tmp_path / "quiet.wav", np.zeros(8000, np.float32), 16000)
    assert run(["separate", str(tmp_path / "quiet.wav"), "-q", "a dog", "-o", str(tmp_path / "o"),
                "--model", "unittest"]) == 0
    assert "silent" in capsys.readouterr().err
    assert np.abs(soundfile.read(tmp_path / "o" / "quiet" / "a-dog.wav")[0]).max() == 0


@pytest.mark.parametrize("args,expected", [
    (["-q", ""], "empty prompt"),
    (["-q", "x", "--model", "no-such-model"], "unknown separator model"),
    (["-q", "x", "--model", "/nonexistent/folder"], "no such model folder, training run or checkpoint"),
    (["-q", "x", "--jobs", "0"], "--jobs"),
])
def test_bad_prompts_and_models_exit_2(inputs, tmp_path, capsys, args, expected):
    base = ["separate", str(inputs / "song.wav"), "-o", str(tmp_path / "o")]
    if "--model" not in args:
        args = args + ["--model", "unittest"]
    assert run(base + args) == 2
    lines = err_lines(capsys)
    assert len(lines) == 1 and expected in lines[0]


def test_corrupt_checkpoint_and_unwritable_output(inputs, tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"kind": "bisep-separator", "config": {}}')
    (model / "model.safetensors").write_bytes(b"\x00" * 64)
    assert run(["separate", str(inputs / "song.wav"), "-q", "x", "-o", str(tmp_path / "o"),
                "--model", str(model)]) == 2
    assert "corrupt weights" in err_lines(capsys)[0]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run(["separate", str(inputs / "song.wav"), "-q", "x", "-o", str(blocker / "out"),
                "--model", "unittest"]) == 2
    assert "1 of 1 inputs failed" in err_lines(capsys)[-1]


def test_a_training_run_is_a_model(inputs, tmp_path):
    """A `bisep train` output folder names its best checkpoint, for `separate` as for `evaluate`."""
    import shutil

    from bisep.pretrained import asset_folder

    shutil.copytree(asset_folder("separator", "builtin"), tmp_path / "run" / "checkpoints" / "best")
    out = tmp_path / "out"
    assert run(["separate", str(inputs / "song.wav"), "-q", "x", "-o", str(out), "--model",
                str(tmp_path / "run")]) == 0
    assert (out / "song" / "x.wav").is_file()
    assert run(["separate", str(inputs / "song.wav"), "-q", "x", "-o", str(out), "--model",
                str(tmp_path / "no-run")]) == 2


def test_prompts_whose_names_collide_get_their_position(inputs, tmp_path):
    out = tmp_path / "out"
    assert run(["separate", str(inputs / "song.wav"), "-q", "a dog!", "-q", "a dog?", "-o", str(out), "--model",
                "unittest", "--residual"]) == 0
    names = sorted(path.name for path in (out / "song").iterdir())
    assert names == ["1-a-dog.wav", "2-a-dog.wav", "residual.wav"]
