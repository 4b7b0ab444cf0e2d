import subprocess
import sys

import pytest

from bisep.data.reserved import ReservedSource, refuse_reserved, reserved_package


@pytest.mark.parametrize("path", [
    "/usr/share/asterisk/sounds/en/hello-world.gsm",
    "/usr/share/sonic-pi/samples/drum_heavy_kick.flac",
    "/usr/share/sounds/freedesktop/stereo/bell.oga",
    "/usr/share/sounds/sf2/MuseScore_General.sf2",
    "/home/someone/copies/MuseScore_General_HQ.sf3",
])
def test_reserved_sources_are_refused_by_where_they_live_or_what_they_are_called(path):
    assert reserved_package(path)
    with pytest.raises(ReservedSource, match="reserved for independent evaluation"):
        refuse_reserved(path)


def test_other_sources_pass(tmp_path):
    assert reserved_package(tmp_path / "my-kit.sf2") is None
    assert refuse_reserved(tmp_path / "my-kit.sf2") == tmp_path / "my-kit.sf2"


def test_corpus_build_refuses_a_reserved_soundfont_with_one_error_line(tmp_path):
    reserved = tmp_path / "sounds" / "freedesktop" / "font.sf2"
    reserved.parent.mkdir(parents=True)
    reserved.write_bytes(b"RIFF")
    result = subprocess.run([sys.executable, "-m", "bisep.cli", "corpus", "build", "--out", str(tmp_path / "c"),
                             "--size", "tiny", "--soundfont", str(reserved)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("bisep: error:")
    assert "reserved for independent evaluation" in result.stderr
    assert not (tmp_path / "c").exists()
