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

from bisep import __version__
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
def corpus_build(out, size, seed, soundfonts, jobs, with_stems, sample_rate, clip_seconds, overwrite) -> None:
    """Render the built-in corpus of captioned natural mixtures (offline, deterministic for a seed)."""
    import time

    from bisep.data.corpus import CorpusOptions, build_corpus
    from bisep.data.sources import RenderResources
    from bisep.data.sources.general_midi import default_soundfonts, load_soundfonts

    options = CorpusOptions(size=size, seed=seed, sample_rate=sample_rate, clip_seconds=clip_seconds,
                            with_stems=with_stems)
    fonts = load_soundfonts(list(soundfonts)) if soundfonts else default_soundfonts()
    started = time.perf_counter()
    manifest = build_corpus(out, options, RenderResources(fonts), jobs=max(1, jobs), overwrite=overwrite)
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
def grounding_evaluate(corpus_folder, grounding_spec, out) -> None:
    """Zero-shot classification, retrieval and leakage sensitivity on the corpus's test split."""
    from bisep.grounding import load_grounding
    from bisep.grounding.evaluate import evaluate_grounding

    model = load_grounding(grounding_spec)
    results = evaluate_grounding(model, corpus_folder, out or Path(corpus_folder) / "grounding_eval")
    leakage = results.pop("leakage")
    for key, value in results.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    for key, value in leakage.items():
        print(f"leakage.{key}: {value:.4f}" if isinstance(value, float) else f"leakage.{key}: {value}")


@app.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo-output"), show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo(out, seed) -> None:
    """Show the built-in world: render a tiny captioned corpus, preview it, and measure how well the shipped
    grounding model names its sounds."""
    import time

    from bisep.data.corpus import CorpusOptions, build_corpus
    from bisep.data.preview import write_preview
    from bisep.data.sources import RenderResources
    from bisep.data.sources.general_midi import default_soundfonts
    from bisep.grounding import load_grounding
    from bisep.grounding.evaluate import evaluate_grounding
    from bisep.pretrained import known_names

    started = time.perf_counter()
    corpus_folder = Path(out) / "corpus"
    manifest = build_corpus(corpus_folder, CorpusOptions(size="tiny", seed=seed),
                            RenderResources(default_soundfonts()), jobs=os.cpu_count() or 1, overwrite=True)
    sheet, page = write_preview(corpus_folder, Path(out) / "preview", per_split=4)
    print(f"rendered {sum(s['clips'] for s in manifest['stats'].values())} clips of "
          f"{len(manifest['classes'])} sound classes into {corpus_folder}")
    print(f"look and listen: {sheet} and {page}")
    if "builtin" in known_names("grounding"):
        results = evaluate_grounding(load_grounding("builtin"), corpus_folder, Path(out) / "grounding")
        print(f"built-in grounding model on {results['clips']} unseen clips: zero-shot top-1 "
              f"{results['zero_shot_top1_seen']:.1%} (seen phrasings), {results['zero_shot_top1_held_out']:.1%} "
              f"(paraphrases never seen); confusion matrix in {Path(out) / 'grounding'}")
    print(f"done in {time.perf_counter() - started:.0f} s")


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


def warn(message: str) -> None:
    print(f"bisep: warning: {message}", file=sys.stderr)


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
    except click.ClickException as error:
        error.show(file=sys.stderr)
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
