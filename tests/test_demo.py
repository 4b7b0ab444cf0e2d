import json

from bisep.cli import run


def test_demo_separates_every_shipped_example_and_writes_the_page(tmp_path, capsys):
    from bisep.examples import list_examples

    assert run(["demo", "--out", str(tmp_path), "--model", "unittest"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "demo.json").read_text())
    examples = list_examples()
    assert [e["name"] for e in summary["examples"]] == [e.name for e in examples]
    for example in examples:
        assert example.name in printed
        folder = tmp_path / example.name
        assert (folder / "input.wav").is_file() and (folder / "residual.png").is_file()
        assert len(list(folder.glob("*.reference.wav"))) == len(example.prompts)
    page = (tmp_path / "index.html").read_text()
    assert page.count("<audio") == sum(2 * len(e.prompts) + 2 for e in examples)
    assert "mean SDRi" in printed


def test_demo_with_an_unknown_model_is_one_line_and_exit_2(tmp_path, capsys):
    assert run(["demo", "--out", str(tmp_path), "--model", "no-such-model"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
