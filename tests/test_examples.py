import json

import numpy as np
import pytest
import soundfile

from bisep.data.examples import ExampleSpec, render_examples
from bisep.errors import BisepError
from bisep.examples import EXAMPLES_FOLDER, list_examples


def test_shipped_examples_load_and_each_reference_is_exactly_its_share():
    examples = list_examples()
    assert len(examples) == 6
    assert {len(example.prompts) for example in examples} == {2, 3}
    for example in examples:
        assert example.caption and set(example.references) == set(example.prompts)
        mixture, rate = soundfile.read(example.mixture, dtype="int16")
        assert rate == 16000 and mixture.shape == (64000,)
        total = sum(soundfile.read(path, dtype="int16")[0].astype(np.int32) for path in example.references.values())
        np.testing.assert_array_equal(mixture, total)
    size = sum(path.stat().st_size for path in EXAMPLES_FOLDER.rglob("*") if path.is_file())
    assert size < 2_000_000


def test_loader_refuses_missing_files_and_paths_outside_its_folder(tmp_path):
    render_examples(tmp_path / "examples", specs=(ExampleSpec("tiny", ("rain", "clock ticking")),),
                    seconds=2.0, sample_rate=8000)
    folder = tmp_path / "examples"
    (folder / "tiny" / "mixture.flac").unlink()
    with pytest.raises(BisepError, match="mixture.flac is missing"):
        list_examples(folder)
    index = json.loads((folder / "examples.json").read_text())
    index["examples"][0]["mixture"] = "../../etc/passwd"
    (folder / "examples.json").write_text(json.dumps(index))
    with pytest.raises(BisepError, match="outside the examples folder"):
        list_examples(folder)
    with pytest.raises(BisepError, match="no examples index"):
        list_examples(tmp_path / "nowhere")
