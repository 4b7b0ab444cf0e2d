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
    assert soundfile.info(out / "nested" / "speech" / "a-violin.wav").samplerate == 16000  # the tree mirrored
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
    assert (tmp_path / "o" / "in" / "song" / "a-dog.wav").is_file()


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


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_inputs_with_the_same_name_keep_their_own_outputs(tmp_path, overwrite):
    """Issue #23: a/take.wav and b/take.wav, or song.wav and song.flac, once shared OUT/take/."""
    for folder, frequency in (("a", 300), ("b", 900)):
        (tmp_path / folder).mkdir()
        soundfile.write(tmp_path / folder / "take.wav", tone(frequency, 0.5), 16000)
    soundfile.write(tmp_path / "a" / "song.wav", tone(300, 0.5), 16000)
    soundfile.write(tmp_path / "a" / "song.flac", tone(600, 0.7), 16000)
    out = tmp_path / "out"
    inputs = [str(tmp_path / "a" / "take.wav"), str(tmp_path / "b" / "take.wav"), str(tmp_path / "a")]
    assert run(["separate", *inputs, "-q", "x", "-o", str(out), "--model", "unittest", *overwrite]) == 0
    written = sorted(str(path.relative_to(out)) for path in out.rglob("*") if path.is_file())
    assert written == ["a/song.flac/x.wav", "a/song.wav/x.wav", "a/take/x.wav", "b/take/x.wav"]
    assert soundfile.info(out / "a" / "song.flac" / "x.wav").frames == 11200
    first, second = (soundfile.read(out / folder / "take" / "x.wav")[0] for folder in "ab")
    assert not np.allclose(first, second)


def test_a_prompt_called_residual_keeps_its_output_beside_the_residual(inputs, tmp_path):
    out = tmp_path / "out"
    assert run(["separate", str(inputs / "song.wav"), "-q", "residual", "-o", str(out), "--model", "unittest",
                "--residual"]) == 0
    prompt, _ = soundfile.read(out / "song" / "1-residual.wav")
    rest, _ = soundfile.read(out / "song" / "residual.wav")
    original, _ = soundfile.read(inputs / "song.wav")
    assert np.abs(prompt + rest - original).max() < 1e-3  # two different outputs that add up to the input


def test_an_interrupted_run_leaves_no_partial_outputs_and_a_rerun_starts_clean(inputs, tmp_path, monkeypatch, capsys):
    from bisep.audio import AudioWriter

    original_write, calls = AudioWriter.write, []

    def interrupt_on_the_third_write(self, block):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        original_write(self, block)

    monkeypatch.setattr(AudioWriter, "write", interrupt_on_the_third_write)
    out = tmp_path / "out"
    args = ["separate", str(inputs / "song.wav"), "-q", "a", "-q", "b", "-q", "c", "-o", str(out), "--model",
            "unittest", "--residual"]
    assert run(args) == 130
    assert list(out.rglob("*")) == []  # neither outputs nor the staging folder
    monkeypatch.setattr(AudioWriter, "write", original_write)
    assert run(args) == 0
    assert sorted(path.name for path in (out / "song").iterdir()) == ["a.wav", "b.wav", "c.wav", "residual.wav"]


def test_an_unwritable_output_is_blamed_on_the_output_before_separating(inputs, tmp_path, monkeypatch, capsys):
    from bisep.separator.api import Separator

    def never(*args, **kwargs):
        raise AssertionError("separated although the output cannot be written")

    monkeypatch.setattr(Separator, "separate_file", never)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run(["separate", str(inputs / "song.wav"), "-q", "x", "-o", str(blocker / "out"),
                "--model", "unittest"]) == 2
    lines = err_lines(capsys)
    assert lines[0].startswith(f"bisep: error: {blocker / 'out' / 'song'}: cannot write the outputs (Not a directory)")


def copied_model(tmp_path, edit):
    """The shipped model folder with its config.json changed by ``edit(meta)``."""
    import json
    import shutil

    from bisep.pretrained import asset_folder

    folder = tmp_path / "model"
    shutil.copytree(asset_folder("separator", "builtin"), folder)
    meta = json.loads((folder / "config.json").read_text())
    edit(meta)
    (folder / "config.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize("edit, expected", [
    (lambda meta: meta["config"].update(base_channels=-8), "base_channels must be in [1, 256], got -8"),
    (lambda meta: meta["config"].update(base_channels=100000), "base_channels must be in [1, 256], got 100000"),
    (lambda meta: meta["config"].update(base_channels=16), "tensor 'unet."),
    (lambda meta: meta["provenance"].update(grounding_folder="../../elsewhere"), "points outside the model folder"),
])
def test_a_bad_model_folder_is_one_error_line(inputs, tmp_path, capsys, edit, expected):
    model = copied_model(tmp_path, edit)
    assert run(["separate", str(inputs / "song.wav"), "-q", "x", "-o", str(tmp_path / "o"), "--model",
                str(model)]) == 2
    lines = err_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("bisep: error:") and expected in lines[0], lines


def test_garbage_mp3_devices_and_pipes_get_a_true_message(tmp_path, capfd):
    import os

    garbage = tmp_path / "song.mp3"
    garbage.write_bytes(bytes(range(256)) * 64)
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    status = run(["separate", str(garbage), "/dev/zero", str(fifo), "-q", "x", "-o", str(tmp_path / "o"),
                  "--model", "unittest"])
    assert status == 2
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 4 and all(line.startswith("bisep: error:") for line in lines), lines
    assert lines[0] == f"bisep: error: {garbage}: unreadable or corrupt audio (not a recognisable MP3 file)"
    assert lines[1] == "bisep: error: /dev/zero: is a device, not a regular file; bisep reads audio files"
    assert lines[2] == f"bisep: error: {fifo}: is a pipe, not a regular file; bisep reads audio files"


@pytest.mark.parametrize("load, threads", [(0.1, 4), (1.4, 3), (2.6, 1), (3.6, 1), (40.0, 1)])
def test_the_default_threads_are_the_idle_cores(inputs, tmp_path, monkeypatch, load, threads):
    """Issue #23: 2 threads on a 2-core machine busy training ran 7x slower than 1; only idle cores get one."""
    import os

    import torch

    chosen = []
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr("bisep.cores.busy_cores", lambda: None)  # the load average stands in
    monkeypatch.setattr(torch, "set_num_threads", chosen.append)
    assert run(["separate", str(inputs / "song.wav"), "-q", "x", "-o", str(tmp_path / "o"), "--model", "unittest"]) == 0
    assert run(["separate", str(inputs / "song.wav"), "-q", "x", "-o", str(tmp_path / "p"), "--model", "unittest",
                "--jobs", "3"]) == 0
    assert chosen == [threads, 3]


@pytest.mark.parametrize("busy, threads", [(0.05, 4), (1.4, 3), (3.9, 1)])
def test_the_busy_cores_measured_now_win_over_the_lagging_load_average(inputs, tmp_path, monkeypatch, busy,
                                                                       threads):
    import os

    import torch

    from bisep.cores import busy_cores

    chosen = []
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))  # a job that just ended
    monkeypatch.setattr("bisep.cores.busy_cores", lambda: busy)
    monkeypatch.setattr(torch, "set_num_threads", chosen.append)
    assert run(["separate", str(inputs / "song.wav"), "-q", "x", "-o", str(tmp_path / "o"), "--model", "unittest"]) == 0
    assert chosen == [threads]
    measured = busy_cores(0.05)
    assert measured is None or 0.0 <= measured <= (os.cpu_count() or 1) + 1e-9


def test_staging_left_by_a_killed_run_is_removed_and_a_live_one_kept(inputs, tmp_path):
    import subprocess

    out = tmp_path / "out"
    finished = subprocess.Popen(["true"])
    finished.wait()  # a process id that no longer exists
    stale = out / f".song.partial-{finished.pid}"
    live = out / ".song.partial-1"  # pid 1 is alive (and not ours)
    for folder in (stale, live):
        folder.mkdir(parents=True)
        (folder / "a.wav").write_bytes(b"half")
    assert run(["separate", str(inputs / "song.wav"), "-q", "a", "-o", str(out), "--model", "unittest"]) == 0
    assert not stale.exists() and live.exists()
    assert (out / "song" / "a.wav").is_file()
