"""Evaluation end to end with the tiny `unittest` model: the report, silent references skipped and counted, the
same bytes with and without worker processes, the oracles alone, a training run as --checkpoint, bad input."""

import csv
import json

import pytest
import torch

from bisep.cli import run
from bisep.evaluate import evaluate_oracles, evaluate_separator
from bisep.separator.api import Separator
from bisep.model_folder import write_model_folder
from bisep.separator.model import SeparatorConfig, TextQueriedSeparator
from synthetic import make_dataset

REPORT_FILES = ("results.json", "scores.csv", "summary.md", "per_class_sdri.png", "sdri_histogram.png", "timing.json")


@pytest.fixture(scope="module")
def separator():
    return Separator.from_pretrained("unittest", device="cpu")


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path / "data", silent_clip=True)


def test_report_counts_skips_and_reference_points(separator, dataset, tmp_path):
    out = tmp_path / "out"
    result = evaluate_separator(separator, dataset / "compositions" / "test_2.csv", out, jobs=0, examples=1)
    assert result["counts"] == {"compositions": 4, "scored": 3, "skipped_silent_reference": 1, "sources_scored": 6,
                                "silent_estimates": {"model": 0, "irm": 0, "ibm": 0}}
    assert result["methods"] == ["model", "mixture", "irm", "ibm", "reference"]
    for name in REPORT_FILES:
        assert (out / name).is_file(), name
    examples = sorted(p.name for p in (out / "examples").iterdir())
    assert len(examples) == 2 and examples[0].startswith("best-1-") and examples[1].startswith("worst-1-")
    for name in ("mixture.wav", "1-reference.wav", "2-model.wav", "spectrograms.png"):
        assert (out / "examples" / examples[0] / name).is_file()

    results = json.loads((out / "results.json").read_text())
    skipped = [r for r in results["records"] if "skipped" in r]
    assert [r["skipped"] for r in skipped] == ["silent reference: test-004"]
    summary = result["summary"]
    assert summary["irm"]["overall"]["sdri"]["mean"] > 10  # tones and noise: the ideal masks separate them
    assert summary["mixture"]["overall"]["sdri"]["mean"] == 0.0
    assert set(summary["model"]["overall"]) == {"sdr", "sir", "sar", "sdri", "si_sdr", "si_sdri", "clap_score"}
    assert set(summary["reference"]["overall"]) == {"clap_score"}
    assert sorted(summary["model"]["per_class"]) == ["beeping", "high whistle", "hiss", "low hum"]
    assert summary["model"]["overall"]["sdr"]["count"] == 6
    with open(out / "scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * 2 * 5 and {row["method"] for row in rows} == set(result["methods"])
    markdown = (out / "summary.md").read_text()
    assert "1 skipped for a silent reference" in markdown and "| irm |" in markdown


def test_any_number_of_workers_gives_the_same_report(separator, dataset, tmp_path):
    """Workers evaluate on one thread each, so 1 or 2 give the same bytes; in-process (jobs 0) the network runs
    on the main process's threads, which moves scores by float rounding only."""
    for jobs in (0, 1, 2):
        evaluate_separator(separator, dataset / "compositions" / "test_2.csv", tmp_path / f"jobs{jobs}", jobs=jobs,
                           examples=0)
    for name in ("results.json", "scores.csv", "summary.md"):
        assert (tmp_path / "jobs1" / name).read_bytes() == (tmp_path / "jobs2" / name).read_bytes(), name
    inline, pooled = (json.loads((tmp_path / name / "results.json").read_text())["records"]
                      for name in ("jobs0", "jobs2"))
    for a, b in zip(inline, pooled):
        assert a.keys() == b.keys()
        for method, scores in a.get("scores", {}).items():
            for metric, values in scores.items():
                assert values == pytest.approx(b["scores"][method][metric], abs=1e-3), (method, metric)


def test_oracles_alone(dataset, tmp_path):
    result = evaluate_oracles(dataset / "compositions" / "test_3.csv", tmp_path / "oracles", n_fft=254, hop_length=64,
                              grounding=None, jobs=0, examples=0)
    assert result["methods"] == ["mixture", "irm", "ibm"]
    assert result["summary"]["irm"]["overall"]["sdri"]["mean"] > 5
    assert "clap_score" not in result["summary"]["irm"]["overall"]


def test_cli_with_a_training_run_as_checkpoint(dataset, tmp_path, capsys):
    torch.manual_seed(0)
    config = SeparatorConfig(n_fft=254, hop_length=64, num_downs=4, base_channels=4, out_channels=4, heads=1,
                             token_dim=384, embedding_dim=256)
    write_model_folder(tmp_path / "run" / "checkpoints" / "best", TextQueriedSeparator(config), config,
                       {"grounding": "builtin"})
    out = tmp_path / "out"
    status = run(["evaluate", "--checkpoint", str(tmp_path / "run"), "--compositions",
                  str(dataset / "compositions" / "test_3.csv"), "--out", str(out), "--jobs", "0", "--no-oracles",
                  "--examples", "0"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "1 of 1 compositions scored" in printed and "model: SDR" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["separator"]["checkpoint"] == str(tmp_path / "run" / "checkpoints" / "best")
    assert results["clap_score_grounding"] == "builtin" and results["methods"] == ["model", "mixture"]


@pytest.mark.parametrize("case, message", [
    ("missing list", "nope.csv: compositions file not found"),
    ("unknown model", "unknown separator model 'no-such-model'"),
    ("missing audio", "audio of clip test-001 not found"),
    ("bad jobs", "jobs must be 0"),
])
def test_cli_bad_input_is_one_line_and_status_2(dataset, tmp_path, capsys, case, message):
    compositions = dataset / "compositions" / ("nope.csv" if case == "missing list" else "test_2.csv")
    if case == "missing audio":
        (dataset / "audio" / "test" / "test-001.wav").unlink()
    args = ["evaluate", "--checkpoint", "no-such-model" if case == "unknown model" else "unittest",
            "--compositions", str(compositions), "--out", str(tmp_path / "out"), "--jobs",
            "-1" if case == "bad jobs" else "0"]
    assert run(args) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("bisep: error:") and message in lines[0], lines


def test_the_gpu_layout_separates_here_and_scores_in_workers(separator, dataset):
    """With a GPU the main process separates and workers only score: the same records as doing both here."""
    from tqdm import tqdm

    from bisep.evaluate.compositions import CompositionList
    from bisep.evaluate.run import CompositionEvaluator, SeparatorEstimator, _metrics_in_workers

    compositions = CompositionList.open(dataset / "compositions" / "test_2.csv")
    evaluator = CompositionEvaluator(compositions, [SeparatorEstimator(separator)], separator.grounding, False)
    evaluator.encode_prompts()
    pooled = _metrics_in_workers(evaluator, 4, 2, tqdm(disable=True))
    assert pooled == [evaluator.evaluate(index) for index in range(4)]
    assert "skipped" in pooled[3] and "scores" in pooled[2]
