"""The command line's contract: one line on stderr and exit 2 for bad input, 0 on success."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile

from bisep.cli import run
from conftest import tone


def error_lines(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_version_and_help(capsys):
    assert run(["--version"]) == 0
    assert "bisep 0.1.0" in capsys.readouterr().out
    assert run(["--help"]) == 0


def test_info_reads_good_file(wav_file, capsys):
    assert run(["info", str(wav_file)]) == 0
    assert "16000 Hz, 1 ch, 1.000 s" in capsys.readouterr().out


def make_bad(kind, tmp_path):
    path = tmp_path / f"{kind}.wav"
    if kind == "missing":
        return path, "file not found"
    if kind == "corrupt":
        data = (tmp_path / "good.wav")
        soundfile.write(data, tone(), 16000)
        path.write_bytes(data.read_bytes()[:30] + b"\x00garbage" * 50)
        return path, "corrupt"
    if kind == "garbage":
        path.write_bytes(b"this is not a wav file at all" * 20)
        return path, "unreadable or corrupt"
    if kind == "empty":
        path.write_bytes(b"")
        return path, "empty"
    if kind == "no_samples":
        soundfile.write(path, np.zeros(0, np.float32), 16000)
        return path, "no audio samples"
    if kind == "nan":
        soundfile.write(path, np.array([0.1, np.nan, 0.2] * 100, np.float32), 16000, subtype="FLOAT")
        return path, "NaN or infinite"
    if kind == "long":
        soundfile.write(path, np.zeros(16000 * 3, np.float32) + 0.1, 16000)
        return path, "longer than the limit"
    if kind == "unsupported":
        path = tmp_path / "notes.txt"
        path.write_text("hello")
        return path, "unsupported format '.txt'"
    if kind == "silent":
        soundfile.write(path, np.zeros(16000, np.float32), 16000)
        return path, "silent"
    if kind == "folder":
        path.mkdir()
        return path, "is a folder"
    raise ValueError(kind)


@pytest.mark.parametrize(
    "kind", ["missing", "corrupt", "garbage", "empty", "no_samples", "nan", "long", "unsupported", "silent", "folder"]
)
def test_bad_audio_gives_one_line_and_exit_2(kind, tmp_path, capsys):
    path, expected = make_bad(kind, tmp_path)
    status = run(["info", "--max-seconds", "2", "--require-sound", str(path)])
    lines = error_lines(capsys)
    assert status == 2
    assert expected in lines[0] and str(path) in lines[0]
    assert all(line.startswith("bisep: error:") for line in lines)


def test_good_files_still_processed_beside_a_bad_one(wav_file, tmp_path, capsys):
    status = run(["info", str(tmp_path / "nope.wav"), str(wav_file)])
    captured = capsys.readouterr()
    assert status == 2 and "16000 Hz" in captured.out and "1 of 2 files" in captured.err


def test_usage_error_exits_2(capsys):
    assert run(["info", "--no-such-option"]) == 2


def test_installed_entry_point_runs_as_a_process(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bisep.cli", "info", str(tmp_path / "missing.wav")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 1 and "Traceback" not in result.stderr


def test_internal_error_exits_1_without_traceback(wav_file, capsys, monkeypatch):
    import bisep.audio

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(bisep.audio, "load_audio", broken)
    assert run(["info", str(wav_file)]) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("bisep: internal error: RuntimeError: boom")
