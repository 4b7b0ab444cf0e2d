import json
from pathlib import Path

import pytest

from bisep.benchmark import BenchmarkPlan, insert_section, run_benchmark

TINY = ["model.num_downs=3", "model.conditioned_levels=1", "optim.batch_size=2", "data.validation_items=2",
        "data.segment_seconds=1.0", "threads=1"]


def test_benchmark_trains_scores_and_writes_the_table_then_reuses_it(tiny_corpus, tmp_path, capsys):
    ledger = tmp_path / "BENCHMARK.md"
    ledger.write_text("# bisep benchmarks\n\nintro\n\n## Older section\n\nold figures\n")
    plan = BenchmarkPlan(out=tmp_path / "bench", corpus=tiny_corpus, seeds=1, steps=2, validate_every=2,
                         test_items=2, runs=("unsupervised", "weak"), jobs=0, grounding="builtin",
                         separations_per_step=12, overrides=TINY, benchmark_file=ledger)
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


def test_every_mode_trains_the_same_estimates_per_step():
    from bisep.benchmark import RUNS, BenchmarkPlan, batch_for, run_config
    from bisep.train.objectives import separations_per_item

    plan = BenchmarkPlan.from_budget("default", Path("/tmp/unused"))
    batches = {}
    for name in RUNS:
        config = run_config(plan, name, 0, Path("corpus"), "builtin")
        data = config.data
        per_item = separations_per_item(config.mode, data.clips_per_mixture, data.phrases_per_clip,
                                        data.sources_per_supervised_mixture)
        batches[name] = config.optim.batch_size
        assert config.optim.batch_size * per_item == plan.separations_per_step == 48
        assert config.data.items_per_epoch == plan.validate_every * config.optim.batch_size
        assert config.data.validation_items == 100
    assert batches == {"unsupervised": 24, "weak": 8, "supervised": 24, "semi": 6, "weak_no_contrastive": 8,
                       "weak_no_consistency": 8}
    custom = BenchmarkPlan(out=Path("/tmp/unused"), separations_per_step=None)
    assert run_config(custom, "supervised", 0, Path("corpus"), "builtin").optim.batch_size == 8  # the preset's
    assert batch_for(run_config(custom, "weak", 0, Path("corpus"), "builtin"), 1) == 1


def test_the_default_budget_gives_the_ablations_one_seed_and_long_gives_two():
    from bisep.benchmark import BenchmarkPlan

    default, long = (BenchmarkPlan.from_budget(name, Path("/tmp/unused")) for name in ("default", "long"))
    assert [default.seeds_of(name) for name in ("weak", "supervised", "weak_no_contrastive")] == [2, 2, 1]
    assert [long.seeds_of(name) for name in ("weak", "weak_no_consistency")] == [2, 2]
    assert long.steps > default.steps
    assert (default.test_items, long.test_items) == (200, 300)  # the default budget fits 90 minutes (BENCHMARK.md)
    assert BenchmarkPlan.from_budget("default", Path("/tmp/unused"), test_items=None).test_items is None


def _table(supervised: dict, unsupervised: dict) -> dict:
    weak = {"sdr": 5.0, "sdri": 4.8, "si_sdri": 2.0, "sir": 9.0, "sar": 11.0, "clap_score": 0.5}
    runs = {"unsupervised": unsupervised, "weak": weak, "supervised": supervised, "semi": weak}
    return {"runs": {name: {"test_2": [scores], "test_3": [scores]} for name, scores in runs.items()},
            "references": {}, "minutes": {f"{name}-seed0": 1.0 for name in runs}, "wall_minutes": 5.0,
            "curves": {"supervised-seed0": [{"step": 150, "sdri": 1.0, "si_sdri": -1.0},
                                            {"step": 300, "sdri": 2.5, "si_sdri": 0.5},
                                            {"step": 600, "sdri": 2.7, "si_sdri": 0.9}]},
            "batch": {"supervised": 24, "weak": 8},
            "plan": {"size": "small", "seeds": 1, "steps": 600, "test_items": 300, "runs": list(runs),
                     "grounding": "builtin", "budget": "default", "validate_every": 150, "ablation_seeds": 1,
                     "separations_per_step": 48}}


def test_ratios_against_supervised_are_printed_only_when_it_is_healthy():
    from bisep.benchmark import render_section, supervised_health

    sick = {"sdr": 1.75, "sdri": 1.5, "si_sdri": -2.85, "sir": 3.0, "sar": 8.0, "clap_score": 0.3}
    healthy = {"sdr": 5.5, "sdri": 5.3, "si_sdri": 3.0, "sir": 9.0, "sar": 11.0, "clap_score": 0.5}
    unsupervised = {"sdr": 1.94, "sdri": 1.7, "si_sdri": 0.2, "sir": 4.0, "sar": 9.0, "clap_score": 0.3}
    text = render_section(_table(sick, unsupervised))
    assert not supervised_health(_table(sick, unsupervised))[0]
    assert "not a healthy reference" in text and "share of supervised" not in text and "semi / supervised" \
        not in text and "weak / unsupervised SDR: 2.58 x" in text
    text = render_section(_table(healthy, unsupervised))
    assert supervised_health(_table(healthy, unsupervised))[0]
    assert "weak as a share of supervised SDR: 90.9 %" in text and "semi / supervised SDR: 0.91 x" in text
    # sick by SDR alone: below unsupervised
    assert not supervised_health(_table({**healthy, "sdr": 1.0}, unsupervised))[0]
    # the curve table names the batch sizing and how much the last quarter still gained
    assert "each mode's batch trains 48 (mixture, prompt) estimates a step (batch: supervised 24, weak 8)" in text
    assert "| supervised-seed0 | +1.00 | +2.50 | +2.70 | +0.20 |" in text


def test_curves_are_plotted(tmp_path):
    from bisep.benchmark import plot_curves, plateau_gain

    curves = _table({}, {})["curves"]
    assert plot_curves(curves, tmp_path / "c.png").stat().st_size > 1000
    assert plot_curves({"x-seed0": curves["supervised-seed0"][:1]}, tmp_path / "d.png") is None
    assert plateau_gain(curves["supervised-seed0"]) == pytest.approx(0.2)
    assert plateau_gain([]) is None


def _corpus_with(folder, manifest, **changes):
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({**manifest, **changes}))
    return folder


def _shipped_world_manifest():
    """A corpus manifest with exactly the world the shipped grounding model records."""
    from bisep.benchmark import shipped_grounding_world

    world = shipped_grounding_world()
    return {"options": {**world["options"], "with_stems": False}, "soundfonts": world["soundfonts"],
            "sample_banks": {name: {} for name in world["sample_banks"]},
            "field_recordings": {name: {} for name in world["field_recordings"]}}


def test_shipped_grounding_only_for_the_corpus_it_was_trained_on(tmp_path):
    from bisep.benchmark import BenchmarkPlan, prepare_grounding

    plan = BenchmarkPlan(out=tmp_path / "bench")
    (plan.out / "grounding").mkdir(parents=True)
    (plan.out / "grounding" / "model.safetensors").write_bytes(b"")  # a model trained here before: reused
    shipped = _shipped_world_manifest()
    assert shipped["options"]["size"] == "small" and shipped["sample_banks"]
    assert prepare_grounding(plan, _corpus_with(tmp_path / "same", shipped)) == "builtin"
    # the same options, but voiced without the recorded banks or with other recordings: another world
    unvoiced = _corpus_with(tmp_path / "unvoiced", shipped, sample_banks={})
    assert prepare_grounding(plan, unvoiced) == str(plan.out / "grounding")
    other = _corpus_with(tmp_path / "other", shipped, field_recordings={"some-package": {}, **shipped["field_recordings"]})
    assert prepare_grounding(plan, other) == str(plan.out / "grounding")
    seeded = _corpus_with(tmp_path / "seeded", shipped, options={**shipped["options"], "seed": 1})
    assert prepare_grounding(plan, seeded) == str(plan.out / "grounding")
