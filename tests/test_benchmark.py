import json

from bisep.benchmark import BenchmarkPlan, insert_section, run_benchmark

TINY = ["model.num_downs=3", "model.conditioned_levels=1", "optim.batch_size=2", "data.validation_items=2",
        "data.segment_seconds=1.0", "threads=1"]


def test_benchmark_trains_scores_and_writes_the_table_then_reuses_it(tiny_corpus, tmp_path, capsys):
    ledger = tmp_path / "BENCHMARK.md"
    ledger.write_text("# bisep benchmarks\n\nintro\n\n## Older section\n\nold figures\n")
    plan = BenchmarkPlan(out=tmp_path / "bench", corpus=tiny_corpus, seeds=1, steps=2, validate_every=2,
                         test_items=2, runs=("unsupervised", "weak"), jobs=0, grounding="builtin",
                         overrides=TINY, benchmark_file=ledger)
    table = run_benchmark(plan)
    for name in ("unsupervised", "weak"):
        for compositions in ("test_2", "test_3"):
            (scores,) = table["runs"][name][compositions]
            assert isinstance(scores["sdr"], float) and isinstance(scores["sdri"], float)
    assert table["references"]["test_2"]["irm"]["sdri"] > 3  # the oracle separates even on tiny clips
    text = ledger.read_text()
    assert text.index("## Benchmark: the four training modes") < text.index("## Older section")
    assert "weak / unsupervised SDR" in text and "intro" in text and "reused" not in text
    # only the claims whose runs both ran, and the command names the runs it was given
    assert "semi / supervised" not in text and "nan" not in text and "--runs unsupervised,weak`" in text
    saved = json.loads((tmp_path / "bench" / "benchmark.json").read_text())
    assert saved["runs"] == table["runs"]
    capsys.readouterr()
    again = run_benchmark(plan)  # everything finished is reused, nothing retrained
    assert again["runs"] == table["runs"]
    assert "training" not in capsys.readouterr().out
    assert again["reused_runs"] == ["unsupervised-seed0", "weak-seed0"]
    assert "2 run(s) reused from an earlier invocation: unsupervised-seed0, weak-seed0" in ledger.read_text()


def test_insert_section_creates_the_ledger(tmp_path):
    ledger = tmp_path / "B.md"
    insert_section(ledger, "## New\n\nx\n")
    assert ledger.read_text().startswith("# bisep benchmarks\n\n## New")


def test_a_table_without_any_comparison_says_so_instead_of_printing_nan():
    from bisep.benchmark import render_section

    scores = {"sdr": 5.0, "sdri": 4.8, "si_sdri": 2.0, "sir": 9.0, "sar": 11.0, "clap_score": 0.5}
    table = {"runs": {"weak": {"test_2": [scores], "test_3": [scores]}}, "references": {},
             "minutes": {"weak-seed0": 8.0}, "wall_minutes": 9.0, "plan": {"size": "small", "seeds": 1, "steps": 500, "test_items": 300,
                                           "runs": ["weak"], "grounding": "builtin"}}
    text = render_section(table)
    assert "nan" not in text and "No relative figures" in text and "--runs weak`" in text
