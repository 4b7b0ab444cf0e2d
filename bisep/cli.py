"""The ``bisep`` command: a thin layer that parses arguments and calls the library.

Exit status: 0 success, 2 bad input (one line on stderr, no traceback), 1 internal error, 130 interrupted.
Heavy modules are imported inside commands so that ``bisep --help`` stays quick.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
import click

from bisep.version import __version__
from bisep.errors import BisepError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="bisep", message="%(prog)s %(version)s")
def app() -> None:
    """Text-queried sound separation learned from captioned natural mixtures."""


@app.group()
def corpus() -> None:
    """The built-in corpus of captioned natural mixtures."""


@app.group()
def grounding() -> None:
    """Audio-language (grounding) models: train the built-in one, evaluate any."""


@corpus.command("build")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Folder to create.")
@click.option("--size", type=click.Choice(["tiny", "small", "medium"]), default="small", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--soundfont", "soundfonts", multiple=True, type=click.Path(path_type=Path),
              help="General MIDI SF2 file(s) to render with (default: pretty_midi's TimGM6mb and the Debian ones).")
@click.option("--jobs", type=int, default=os.cpu_count() or 1, show_default=True, help="Rendering processes.")
@click.option("--with-stems", is_flag=True, help="Also write each source of the multi-source clips.")
@click.option("--sample-rate", type=int, default=16000, show_default=True)
@click.option("--clip-seconds", type=float, default=4.0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing non-empty output folder.")
@click.option("--acoustics", type=click.Choice(["realistic", "dry"]), default="realistic", show_default=True,
              help="Rooms, microphones, dynamics, noise, band limits and codecs, or the dry renders.")
@click.option("--samples", "sample_root", type=click.Path(path_type=Path),
              help="Folder of the npm sample packages (default: $BISEP_SAMPLES or ~/.local/share/bisep/samples).")
@click.option("--no-samples", is_flag=True, help="Voice instruments with soundfonts only (no recorded banks).")
@click.option("--no-recordings", is_flag=True,
              help="Leave out the field recordings (animals, vehicles, weather, foley from Debian packages).")
def corpus_build(out, size, seed, soundfonts, jobs, with_stems, sample_rate, clip_seconds, overwrite, acoustics,
                 sample_root, no_samples, no_recordings) -> None:
    """Render the built-in corpus of captioned natural mixtures (offline, deterministic for a seed)."""
    import time

    from bisep.data.corpus import CorpusOptions, build_corpus
    from bisep.data.reserved import refuse_reserved
    from bisep.data.sources import RenderResources
    from bisep.data.sources.general_midi import default_soundfonts, load_soundfonts
    from bisep.data.sources.field_recordings import discover_recordings
    from bisep.data.sources.sample_banks import discover_banks

    options = CorpusOptions(size=size, seed=seed, sample_rate=sample_rate, clip_seconds=clip_seconds,
                            with_stems=with_stems, acoustics=acoustics)
    fonts = load_soundfonts(list(soundfonts)) if soundfonts else default_soundfonts()
    banks = {} if no_samples else discover_banks(refuse_reserved(sample_root) if sample_root else None)
    started = time.perf_counter()
    recordings = {} if no_recordings else discover_recordings()
    manifest = build_corpus(out, options, RenderResources(fonts, banks, recordings), jobs=max(1, jobs),
                            overwrite=overwrite)
    counts = ", ".join(f"{split} {stats['clips']}" for split, stats in manifest["stats"].items())
    print(f"wrote {out}: {len(manifest['classes'])} classes; clips: {counts} "
          f"({time.perf_counter() - started:.0f} s)")


@corpus.command("preview")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Where to write (default: FOLDER/preview).")
@click.option("--per-split", type=int, default=6, show_default=True, help="Clips shown per split.")
def corpus_preview(folder, out, per_split) -> None:
    """Write a PNG contact sheet of spectrograms with captions and an HTML page with audio players."""
    from bisep.data.preview import write_preview

    sheet, page = write_preview(folder, out or Path(folder) / "preview", per_split)
    print(f"wrote {sheet} and {page}")


@grounding.command("train")
@click.option("--corpus", "corpus_folder", required=True, type=click.Path(path_type=Path),
              help="A corpus folder (its grounding split trains, its valid split selects).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Model folder to write.")
@click.argument("overrides", nargs=-1)
def grounding_train(corpus_folder, out, overrides) -> None:
    """Train the built-in audio-language model. OVERRIDES: key=value for the training config
    (steps, batch_size, learning_rate, seed, ...) or model.key=value for the model config."""
    from bisep.config import from_dict, apply_override
    from bisep.grounding.builtin import BuiltinGroundingConfig
    from bisep.train.grounding import GroundingTrainingConfig, train_grounding

    values: dict = {}
    for override in overrides:
        apply_override(values, override)
    model_values = values.pop("model", {})
    config = from_dict(GroundingTrainingConfig, values, source="training overrides")
    model_config = from_dict(BuiltinGroundingConfig, model_values, source="model overrides")
    result = train_grounding(corpus_folder, out, config, model_config)
    print(f"wrote {out}: best valid zero-shot accuracy {result['best_valid_accuracy']:.3f} "
          f"({result['seconds'] / 60:.1f} min)")


@grounding.command("evaluate")
@click.option("--corpus", "corpus_folder", required=True, type=click.Path(path_type=Path))
@click.option("--grounding", "grounding_spec", default="builtin", show_default=True,
              help="builtin, clap:/path/to/clap-folder, or a model folder.")
@click.option("--out", type=click.Path(path_type=Path), help="Folder for grounding_eval.json and confusion.png.")
@click.option("--split", type=click.Choice(["test", "valid"]), default="test", show_default=True,
              help="valid: compare training recipes without touching the test split.")
def grounding_evaluate(corpus_folder, grounding_spec, out, split) -> None:
    """Zero-shot classification, retrieval and leakage sensitivity on the corpus's test (or valid) split."""
    from bisep.grounding import load_grounding
    from bisep.evaluate.grounding import evaluate_grounding

    model = load_grounding(grounding_spec)
    default_out = Path(corpus_folder) / ("grounding_eval" if split == "test" else f"grounding_eval_{split}")
    results = evaluate_grounding(model, corpus_folder, out or default_out, split)
    leakage = results.pop("leakage")
    for key, value in results.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    for key, value in leakage.items():
        print(f"leakage.{key}: {value:.4f}" if isinstance(value, float) else f"leakage.{key}: {value}")


@app.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo-output"), show_default=True)
@click.option("--model", default="builtin", show_default=True, help="Shipped model name or model folder.")
@click.option("--device", help="cpu, cuda, cuda:1 (default: cuda when available).")
def demo(out, model, device) -> None:
    """Separate the shipped example mixtures by their prompts with the shipped model: an SDRi table, wavs,
    spectrograms and an HTML page with players in OUT."""
    from bisep.demo import run_demo

    run_demo(Path(out), model=model, device=device)


@app.command()
@click.argument("config_path", metavar="CONFIG", type=click.Path(path_type=Path))
@click.argument("overrides", nargs=-1)
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoints/latest (exact: model, optimiser, "
              "scheduler, epoch, step, RNG).")
@click.option("--device", help="cpu, cuda, cuda:1 (default: the local GPU under torchrun, else cpu).")
@click.option("--max-steps", type=int, help="Stop after this many optimiser steps (budgets, smoke tests).")
def train(config_path, overrides, resume, device, max_steps) -> None:
    """Train a separator from a YAML preset (configs/) with key=value overrides; runs under torchrun too."""
    from bisep.config import load_config
    from bisep.train.config import TrainConfig
    from bisep.train.distributed import teardown_distributed
    from bisep.train.trainer import Trainer

    config = load_config(TrainConfig, config_path, list(overrides))
    try:
        summary = Trainer(config, resume=resume, device=device).run(max_steps=max_steps)
    finally:
        teardown_distributed()
    print(f"trained {summary['global_step']} steps in {summary['seconds'] / 60:.1f} min; best validation SDR "
          f"{summary['best_validation_sdr']:.2f} dB; checkpoints in {Path(config.out) / 'checkpoints'}")


@app.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/benchmark"), show_default=True,
              help="Folder for the corpus, runs and reports (a rerun reuses what is finished there).")
@click.option("--size", type=click.Choice(["tiny", "small", "medium"]), default="small", show_default=True)
@click.option("--corpus", "corpus_folder", type=click.Path(path_type=Path), help="Use this built corpus.")
@click.option("--budget", type=click.Choice(["default", "long"]), default="default", show_default=True,
              help="default: about 90 minutes on 2 cores by measured step costs (the ablations one seed); long: "
              "the full claim table, about 8 hours. The options below override its parts.")
@click.option("--seeds", type=int, help="Seeds of the four modes (budget: 2).")
@click.option("--ablation-seeds", type=int, help="Seeds of the two loss ablations (budget default 1, long 2).")
@click.option("--steps", type=int, help="Optimiser steps of every run (budget default 250, long 1500).")
@click.option("--validate-every", type=int, help="Steps between validations (budget default 125, long 250).")
@click.option("--separations-per-step", type=int, help="(Mixture, prompt) estimates every run's step trains; "
              "each mode's batch is sized to it (budget: 48; 0 keeps every preset's batch).")
@click.option("--test-items", type=int, help="Compositions scored per test list (budget default 200, long 300; "
              "0: all).")
@click.option("--runs", default=",".join(("unsupervised", "weak", "supervised", "semi", "weak_no_contrastive",
                                          "weak_no_consistency")), show_default=True, help="Comma-separated.")
@click.option("--jobs", type=int, default=min(2, os.cpu_count() or 1), show_default=True)
@click.option("--grounding", "grounding_spec", help="Grounding model to use (default: the shipped builtin when "
              "the corpus is the one it was trained on, else one trained on the corpus).")
@click.option("--benchmark-file", type=click.Path(path_type=Path), default=Path("BENCHMARK.md"),
              show_default=True, help="Markdown file that gets the results as its newest section.")
@click.option("--figures", type=click.Path(path_type=Path), default=Path("docs/figures"), show_default=True,
              help="Folder that gets the validation curves (benchmark_BUDGET_curves.png and .json).")
@click.argument("overrides", nargs=-1)
def benchmark(out, size, corpus_folder, budget, seeds, ablation_seeds, steps, validate_every, separations_per_step,
              test_items, runs, jobs, grounding_spec, benchmark_file, figures, overrides) -> None:
    """Train the four separators (unsupervised, weak, supervised, semi) and the weak loss ablations with equal
    budgets (equal estimates per step) on the built-in corpus, score them and the oracles, and write the table
    and the validation curves (OVERRIDES go to every run)."""
    from dataclasses import replace

    from bisep.benchmark import BenchmarkPlan, run_benchmark

    plan = BenchmarkPlan.from_budget(
        budget, out, size=size, corpus=corpus_folder,
        runs=tuple(name.strip() for name in runs.split(",") if name.strip()), jobs=jobs, grounding=grounding_spec,
        overrides=list(overrides), benchmark_file=benchmark_file, figures=figures)
    given = {"seeds": seeds, "ablation_seeds": ablation_seeds, "steps": steps, "validate_every": validate_every}
    changed = {key: value for key, value in given.items() if value is not None}
    if test_items is not None:
        changed["test_items"] = test_items or None
    if separations_per_step is not None:
        changed["separations_per_step"] = separations_per_step or None
    plan = replace(plan, **changed)
    table = run_benchmark(plan)
    print(f"benchmark done in {table['wall_minutes']:.1f} min: {out / 'benchmark.md'}")


@app.command()
@click.option("--checkpoint", required=True, help="Model folder, shipped model name, or a `bisep train` run "
              "(its checkpoints/best, else latest).")
@click.option("--compositions", "compositions_file", required=True, type=click.Path(path_type=Path),
              help="DATASET/compositions/NAME.csv, e.g. corpus/small/compositions/test_2.csv.")
@click.option("--grounding", help="Grounding model for the CLAPScore (default: the separator's own).")
@click.option("--out", type=click.Path(path_type=Path),
              help="Report folder (default: evaluation/<compositions name>).")
@click.option("--jobs", type=int, default=min(2, os.cpu_count() or 1), show_default=True,
              help="Worker processes for the metrics (0: none).")
@click.option("--no-oracles", is_flag=True, help="Skip the ideal-mask reference points.")
@click.option("--examples", type=int, default=2, show_default=True, help="Best and worst compositions to write.")
@click.option("--limit", type=int, help="Evaluate only the first N compositions.")
@click.option("--device", help="cpu, cuda, cuda:1 (default: cuda when available).")
def evaluate(checkpoint, compositions_file, grounding, out, jobs, no_oracles, examples, limit, device) -> None:
    """Mix each test composition, query every source by its prompt and score: SDR, SIR, SAR, SDRi, SI-SDR(i),
    CLAPScore, against the unprocessed mixture and the ideal masks (docs/evaluation.md)."""
    from bisep.evaluate import evaluate_separator
    from bisep.evaluate.compositions import CompositionList
    from bisep.evaluate.report import summary_lines
    from bisep.separator.api import Separator
    from bisep.separator.resolve import resolve_separator

    compositions = CompositionList.open(compositions_file)
    resolved = resolve_separator(checkpoint)
    separator = Separator.from_pretrained(resolved, device=device)
    out = out or Path("evaluation") / compositions.name
    result = evaluate_separator(separator, compositions, out, grounding=grounding, oracles=not no_oracles,
                                jobs=jobs, limit=limit, examples=examples, checkpoint=resolved)
    for line in summary_lines(result):
        print(line)
    print(f"wrote {out}/summary.md, results.json, scores.csv ({result['timing']['seconds']:.0f} s)")


@app.group()
def data() -> None:
    """Prepare AudioCaps, VGGSound and MUSIC, downloaded by you, in the bisep dataset format (resumable: run
    again after an interruption or more downloads); shard a dataset for streaming."""


def _preparation_options(function):
    """The options every `bisep data` command shares."""
    options = [
        click.option("--out", type=click.Path(path_type=Path), help="Dataset folder to write (or resume)."),
        click.option("--jobs", type=int, default=os.cpu_count() or 1, show_default=True,
                     help="Conversion processes."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of splits and compositions."),
        click.option("--list-missing", is_flag=True,
                     help="Print the clips still to download (CSV lines) and exit without writing."),
        click.option("--overwrite", is_flag=True,
                     help="Replace an existing output folder instead of resuming it."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _run_preparation(plan, out: Path | None, jobs: int, list_missing: bool, overwrite: bool) -> None:
    from bisep.data.prepare import missing_fetch_ids, prepare, summary_lines

    if list_missing:
        missing = missing_fetch_ids(plan, out)
        for fetch_id in missing:
            print(fetch_id)
        print(f"{len(missing)} of {len(plan.jobs)} {plan.dataset} sources still to fetch", file=sys.stderr)
        return
    if out is None:
        raise BisepError("--out is required (unless --list-missing)")
    report = prepare(plan, out, jobs=max(1, jobs), overwrite=overwrite)
    for line in summary_lines(report, out):
        print(line)


@data.command("audiocaps")
@click.option("--csv-dir", required=True, type=click.Path(path_type=Path),
              help="Folder with the AudioCaps train.csv, val.csv and test.csv.")
@click.option("--audio-dir", required=True, type=click.Path(path_type=Path),
              help="Folder (searched recursively) with the downloaded clips.")
@click.option("--test-rounds", type=int, default=1, show_default=True,
              help="Passes over the test split per test composition list.")
@_preparation_options
def data_audiocaps(csv_dir, audio_dir, test_rounds, out, jobs, seed, list_missing, overwrite) -> None:
    """AudioCaps: match clips to the split CSVs, convert to 16 kHz mono, parse captions into phrases, write
    splits train/valid/test and compositions valid_2, test_2..4. Files may be named <youtube_id>_<start>
    (start 30, 000030, 30.000), <youtube_id>_<start>_<end>, Y<youtube_id>..., <youtube_id> or <audiocap_id>,
    as wav, flac, mp3, ogg, ... or m4a/mp4/webm (needs ffmpeg)."""
    from bisep.data.audiocaps import CSV_FILES, plan_audiocaps

    plan = plan_audiocaps(csv_dir, audio_dir, seed=seed, test_rounds=test_rounds)
    absent = [name for name in CSV_FILES.values() if name not in plan.notes["csv_files"]]
    if absent:
        warn(f"{csv_dir}: no {', '.join(absent)}; preparing the other splits")
    _run_preparation(plan, out, jobs, list_missing, overwrite)


@data.command("vggsound")
@click.option("--csv", "csv_path", required=True, type=click.Path(path_type=Path),
              help="vggsound.csv: youtube_id, start_seconds, label, split (no header).")
@click.option("--audio-dir", required=True, type=click.Path(path_type=Path),
              help="Folder (searched recursively) with the downloaded clips.")
@click.option("--valid-fraction", type=float, default=0.05, show_default=True,
              help="Share of train clips moved to the valid split.")
@click.option("--test-rounds", type=int, default=10, show_default=True,
              help="Passes over the test split per test composition list.")
@_preparation_options
def data_vggsound(csv_path, audio_dir, valid_fraction, test_rounds, out, jobs, seed, list_missing,
                  overwrite) -> None:
    """VGGSound: match clips to the list, convert to 16 kHz mono, prompt each as "The sound of <label>", write
    splits train/valid/test and compositions of clips of different classes (valid_2, test_2..4). Files may be
    named <youtube_id>_<start> (start 000030, 30, 30.000), with _<end>, a Y prefix, or <youtube_id>."""
    from bisep.data.vggsound import plan_vggsound

    plan = plan_vggsound(csv_path, audio_dir, seed=seed, valid_fraction=valid_fraction, test_rounds=test_rounds)
    _run_preparation(plan, out, jobs, list_missing, overwrite)


@data.command("music")
@click.option("--media-dir", required=True, type=click.Path(path_type=Path),
              help="Folder with <instrument>/<video id>.mp4 (or audio files), e.g. MUSIC_dataset/solo.")
@click.option("--video-list", type=click.Path(path_type=Path),
              help="MUSIC_solo_videos.json: classes come from it and --list-missing compares against it.")
@click.option("--instruments", help="Comma-separated classes to keep, others are skipped (default: the 11 MUSIC "
              "solo instruments; name the MUSIC-21 ones to add them).")
@click.option("--clip-seconds", type=float, default=10.0, show_default=True, help="Length of the cut clips.")
@click.option("--valid-fraction", type=float, default=0.1, show_default=True, help="Share of videos for valid.")
@click.option("--test-fraction", type=float, default=0.1, show_default=True, help="Share of videos for test.")
@click.option("--test-rounds", type=int, default=10, show_default=True,
              help="Passes over the test split per test composition list.")
@_preparation_options
def data_music(media_dir, video_list, instruments, clip_seconds, valid_fraction, test_fraction, test_rounds, out,
               jobs, seed, list_missing, overwrite) -> None:
    """MUSIC: extract audio (ffmpeg for videos), cut recordings into clips, split by video, prompt each clip as
    "The sound of <instrument>", write compositions of different instruments (valid_2, test_2..4)."""
    from bisep.data.music import INSTRUMENTS, plan_music

    if list_missing and video_list is None:
        raise BisepError("--list-missing needs --video-list (MUSIC_solo_videos.json) to know what is missing")
    names = tuple(name.strip() for name in instruments.split(",") if name.strip()) if instruments else INSTRUMENTS
    plan = plan_music(media_dir, seed=seed, clip_seconds=clip_seconds, valid_fraction=valid_fraction,
                      test_fraction=test_fraction, test_rounds=test_rounds, instruments=names,
                      video_list=video_list)
    _run_preparation(plan, out, jobs, list_missing, overwrite)


@data.command("shard")
@click.argument("dataset_folder", metavar="DATASET", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder for the shards and index.")
@click.option("--split", default="train", show_default=True, help="Split to shard.")
@click.option("--shard-size-mb", type=float, help="About this many MB per shard (default 256).")
@click.option("--clips-per-shard", type=int, help="This many clips per shard (instead of a size).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the clip order.")
@click.option("--keep-original", is_flag=True, help="Store every file's original bytes (no FLAC re-encoding).")
@click.option("--overwrite", is_flag=True, help="Replace this split's shards instead of resuming them.")
def data_shard(dataset_folder, out, split, shard_size_mb, clips_per_shard, seed, keep_original, overwrite) -> None:
    """Write a split as WebDataset tar shards OUT/<split>-000000.tar ... and OUT/<split>-index.json, for training
    that streams (data.shards=OUT). Resumable: run again after an interruption."""
    import time

    from bisep.data.shards import ShardOptions, write_shards

    if shard_size_mb is not None and clips_per_shard is not None:
        raise BisepError("give --shard-size-mb or --clips-per-shard, not both")
    options = ShardOptions(split=split, seed=seed, shard_size_mb=shard_size_mb, clips_per_shard=clips_per_shard,
                           keep_original=keep_original)
    started = time.perf_counter()
    index = write_shards(dataset_folder, out, options, overwrite=overwrite, progress=sys.stderr.isatty())
    seconds = time.perf_counter() - started
    size = sum(shard["bytes"] for shard in index["shards"]) / 1e6
    print(f"wrote {len(index['shards'])} shards of split {split} ({index['clips']} clips, {size:.1f} MB) to {out} "
          f"in {seconds:.1f} s")
    if index["skipped"]:
        why = next(iter(index["skipped"].values()))
        warn(f"left out {len(index['skipped'])} unreadable clips (listed in the index; first: {why})")


def _validation_options(function):
    """The options both validation-set commands share."""
    options = [
        click.option("--out", required=True, type=click.Path(path_type=Path), help="Dataset folder to write."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--per-class", type=int, default=8, show_default=True, help="Clips per class."),
        click.option("--items", type=int, help="Compositions per list (default: 150 in valid_2, 100 in valid_3)."),
        click.option("--overwrite", is_flag=True, help="Replace an existing non-empty output folder."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@data.command("realval")
@_validation_options
def data_realval(out, seed, per_class, items, overwrite) -> None:
    """Real-recording validation set (for choosing recipes and checkpoints, never for training): a voice,
    acoustic drum kits, sampled instruments and environmental recordings from Debian packages, with everyday
    prompts; composition lists valid_2 and valid_3 for `bisep evaluate`."""
    from bisep.data.validation_sets import ValidationOptions, build_real_validation

    options = ValidationOptions(seed=seed, per_class=per_class, items=items, overwrite=overwrite,
                                progress=sys.stderr.isatty())
    _report_validation_set(out, build_real_validation(out, options))


@data.command("soundfont-val")
@_validation_options
@click.option("--soundfont", type=click.Path(path_type=Path), default=Path("/usr/share/sounds/sf2/sf_GMbank.sf2"),
              show_default=True, help="A General MIDI SF2 file training never uses (default: csound-soundfont's).")
def data_soundfont_val(out, seed, per_class, items, overwrite, soundfont) -> None:
    """Held-out soundfont validation set: the corpus's General MIDI classes played by a soundfont training never
    uses, prompted with bisep's validation paraphrases; composition lists valid_2 and valid_3."""
    from bisep.data.validation_sets import ValidationOptions, build_soundfont_validation

    options = ValidationOptions(seed=seed, per_class=per_class, items=items, overwrite=overwrite,
                                progress=sys.stderr.isatty())
    _report_validation_set(out, build_soundfont_validation(out, soundfont, options))


def _report_validation_set(out: Path, manifest: dict) -> None:
    lists = ", ".join(f"{name} ({count})" for name, count in manifest["compositions"].items())
    print(f"wrote {out}: {len(manifest['classes'])} classes x {manifest['clips_per_class']} clips; "
          f"compositions {lists}; score with: bisep evaluate --checkpoint builtin --compositions "
          f"{out}/compositions/valid_2.csv")


@app.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-q", "--query", "prompts", multiple=True, required=True, help="What to extract (repeat for more).")
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("--model", default="builtin", show_default=True,
              help="Shipped model name, model folder, or a `bisep train` run (its checkpoints/best, else latest).")
@click.option("--grounding", help="Override the grounding model the separator was trained with.")
@click.option("--device", help="cpu, cuda, cuda:1 (default: cuda when available).")
@click.option("--segment", type=float, default=10.0, show_default=True, help="Segment length in seconds.")
@click.option("--overlap", type=float, default=0.25, show_default=True, help="Overlap between segments (0-1).")
@click.option("--residual", is_flag=True, help="Also write everything the prompts did not select.")
@click.option("--format", "file_format", type=click.Choice(["wav", "flac"]), default="wav", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@click.option("--max-seconds", type=float, default=4 * 3600.0, show_default=True, help="Refuse longer inputs.")
@click.option("--jobs", type=click.IntRange(min=1),
              help="CPU threads the network runs on (default: the cores other processes leave idle, at least 1).")
def separate(inputs, prompts, out, model, grounding, device, segment, overlap, residual, file_format, overwrite,
             max_seconds, jobs) -> None:
    """Extract what each prompt describes from audio files or folders (searched recursively).

    Writes OUT/<input path>/<prompt>.wav (and residual.wav): the inputs' folders are mirrored below OUT, from the
    folder they share; inputs that differ only by extension keep it (OUT/song.wav/, OUT/song.flac/). Stereo is
    separated channel by channel; outputs keep the input's sample rate and channels. Each input's outputs
    appear together when it is done (an interrupted run leaves none). A file that fails is reported and the
    others still run.
    """
    import warnings

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP threads: see idle_cores
    import torch
    from tqdm import tqdm

    from bisep.audio import READABLE_SUFFIXES
    from bisep.files import mirrored_folders, output_stems
    from bisep.grounding.base import check_prompts
    from bisep.cores import idle_cores
    from bisep.separator.api import Separator

    torch.set_num_threads(jobs or idle_cores())

    prompts = check_prompts(list(prompts))
    files = _expand_inputs(inputs, READABLE_SUFFIXES)
    separator = Separator.from_pretrained(model, device=device, grounding=grounding)
    names = [f"{stem}.{file_format}" for stem in output_stems(prompts).values()]
    names += [f"residual.{file_format}"] if residual else []
    failed = []
    progress = tqdm(files, desc="separating", unit="file", disable=not sys.stderr.isatty(), file=sys.stderr)
    for path, folder in zip(progress, mirrored_folders(files)):
        target = Path(out) / folder
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = _separate_into(separator, path, prompts, target, names, residual, overwrite,
                                        segment_seconds=segment, overlap=overlap, max_seconds=max_seconds)
            for warning in caught:
                warn(f"{path}: {warning.message}")
        except BisepError as error:
            print(f"bisep: error: {error}", file=sys.stderr)
            failed.append(path)
            continue
        print(f"{path}: {result.samples / result.sample_rate:.1f} s, {len(prompts)} prompt(s) -> {target}")
    if failed:
        raise BisepError(f"{len(failed)} of {len(files)} inputs failed: {', '.join(map(str, failed))}")


def _separate_into(separator, path: Path, prompts: list[str], target: Path, names: list[str], residual: bool,
                   overwrite: bool, **options):
    """Separate ``path`` into ``target/<name>`` for ``names`` (one per prompt, then the residual): written in a
    hidden staging folder beside ``target`` and renamed to it when complete, so ``target`` never holds a partial
    set, even after Ctrl-C. An output problem is found before separating and blamed on the output."""
    import shutil

    from bisep.files import replace_folder

    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not overwrite:
        raise BisepError(f"{target} exists (pass --overwrite to replace it)")
    _remove_stale_staging(target)
    staging = target.parent / f".{target.name}.partial-{os.getpid()}"
    try:
        staging.mkdir(parents=True)
    except OSError as error:
        raise BisepError(f"{target}: cannot write the outputs ({error.strerror or error})") from None
    try:
        result = separator.separate_file(path, prompts, [staging / name for name in names], residual=residual,
                                         **options)
        replace_folder(staging, target)
    except OSError as error:
        raise BisepError(f"{error.filename or target}: cannot write the outputs ({error.strerror or error})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def _remove_stale_staging(target: Path) -> None:
    """Delete staging folders of ``target`` left by runs that were killed (their process no longer exists)."""
    import shutil

    if not target.parent.is_dir():
        return
    for staging in target.parent.glob(f".{target.name}.partial-*"):
        pid = staging.name.rsplit("-", 1)[-1]
        if not pid.isascii() or not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(staging, ignore_errors=True)
        except (PermissionError, OverflowError):
            continue


def _expand_inputs(inputs, suffixes) -> list[Path]:
    """Files as given; folders searched recursively for audio files (sorted); each file once."""
    files = []
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                warn(f"{path}: no audio files found")
            files.extend(found)
        else:
            files.append(path)
    return list({os.path.abspath(path): path for path in files}.values())


@app.group("import")
def import_group() -> None:
    """Bring models trained elsewhere into bisep model folders."""


@import_group.command("authors")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The bisep model folder to write.")
@click.option("--clap", type=click.Path(path_type=Path),
              help="LAION-CLAP: a transformers ClapModel folder, or LAION's checkpoint file (converted). "
                   "Default: the LAION-CLAP inside CHECKPOINT.")
@click.option("--tokenizer", type=click.Path(path_type=Path),
              help="Folder with roberta-base's tokenizer files (needed when converting LAION-CLAP).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def import_authors(checkpoint, out, clap, tokenizer, overwrite) -> None:
    """Import the paper authors' released separator (model_weights.pth.tar) with its LAION-CLAP."""
    from bisep.importers.authors import import_authors as run_import

    folder = run_import(checkpoint, out, clap=clap, tokenizer=tokenizer, overwrite=overwrite)
    click.echo(f"wrote {folder}; separate with: bisep separate --model {folder} -q PROMPT -o OUT FILE")


def warn(message: str) -> None:
    print(f"bisep: warning: {message}", file=sys.stderr)


@app.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback: only this machine can connect).")
@click.option("--port", type=int, default=7860, show_default=True)
@click.option("--model", default="builtin", show_default=True, help="Shipped model name or model folder.")
@click.option("--device", help="cpu, cuda, cuda:1 (default: cuda when available).")
@click.option("--max-upload-mb", type=float, default=50.0, show_default=True, help="Refuse larger uploads.")
@click.option("--max-seconds", type=float, default=600.0, show_default=True,
              help="Refuse longer audio; a job decodes at most this long of 48 kHz stereo (fewer seconds with more "
                   "channels or a higher rate); at most 8 channels; above 48 kHz it is resampled to 48 kHz.")
@click.option("--queue-size", type=int, default=8, show_default=True,
              help="Separations that may wait; past that the server answers busy.")
@click.option("--keep-minutes", type=float, default=60.0, show_default=True,
              help="Delete a separation's files this long after it finished.")
@click.option("--jobs", type=click.IntRange(min=1),
              help="CPU threads a separation runs on (default: the cores other processes leave idle when it "
                   "starts, at least 1).")
def serve_command(host, port, model, device, max_upload_mb, max_seconds, queue_size, keep_minutes, jobs) -> None:
    """A web page (and JSON API) to separate uploaded audio by text prompts, on this machine."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its OpenMP threads: see idle_cores
    from bisep.serve.app import Settings, serve

    serve(Settings(model=model, device=device, max_upload_mb=max_upload_mb, max_seconds=max_seconds,
                   queue_size=queue_size, keep_minutes=keep_minutes, host=host, threads=jobs), host=host, port=port)


@app.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--require-sound", is_flag=True, help="Treat an all-silent file as an error.")
@click.option("--max-seconds", type=float, default=4 * 3600.0, show_default=True, help="Refuse longer files.")
def info(files: tuple[Path, ...], require_sound: bool, max_seconds: float) -> None:
    """Read audio files and print rate, channels, duration, peak and RMS (checks that bisep can read them)."""
    from bisep.audio import load_audio, peak_db

    failed = []
    for path in files:
        try:
            waveform, rate = load_audio(path, max_seconds=max_seconds, reject_silent=require_sound)
        except BisepError as error:
            print(f"bisep: error: {error}", file=sys.stderr)
            failed.append(path)
            continue
        rms = float(waveform.pow(2).mean().sqrt())
        rms_db = f"{20 * math.log10(rms):.1f}" if rms > 0 else "-inf"
        print(
            f"{path}: {rate} Hz, {waveform.shape[0]} ch, {waveform.shape[1] / rate:.3f} s, "
            f"peak {peak_db(waveform):.1f} dBFS, rms {rms_db} dBFS"
        )
    if failed:
        raise BisepError(f"{len(failed)} of {len(files)} files could not be read")


def run(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status instead of exiting (used by tests)."""
    try:
        app(args=argv, prog_name="bisep", standalone_mode=False)
    except click.exceptions.Exit as stop:
        return stop.exit_code
    except click.ClickException as error:  # usage errors too: one line, like every other bad input
        print(f"bisep: error: {error.format_message()}", file=sys.stderr)
        return 2
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("bisep: interrupted", file=sys.stderr)
        return 130
    except BisepError as error:
        print(f"bisep: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the one place that turns a bug into a one-line report
        if os.environ.get("BISEP_DEBUG"):
            raise
        print(
            f"bisep: internal error: {type(error).__name__}: {error} (run with BISEP_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
