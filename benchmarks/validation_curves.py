"""Validation curves of a long training run on several composition lists at once: in-domain (the corpus's
valid_2), a held-out soundfont with held-out phrasings (``bisep data soundfont-val``) and real recordings
(``bisep data realval``). Every ``checkpoints/epochNNNN`` folder is scored with ``bisep evaluate``'s code; scores
already in ``--out``.json are kept, so rerunning as the run goes on only scores the new checkpoints.

    python benchmarks/validation_curves.py runs/builtin-long \
        --list in-domain=corpus/small/compositions/valid_2.csv \
        --list held-out-soundfont=corpus/sfval/compositions/valid_2.csv \
        --list real-recordings=corpus/realval/compositions/valid_2.csv \
        --limit 100 --reference builtin --training-corpus corpus/small --out docs/figures/builtin_long_curves
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def training_classes(corpus: Path) -> set[str]:
    """The sound classes a corpus's clips are labelled with: what a model trained on it has heard."""
    annotations = json.loads((corpus / "annotations.json").read_text())
    clips = annotations.get("clips", annotations)
    return {label for record in clips.values() for label in record["labels"]}


# the validation sets' labels that name a training class by another name
SAME_CLASS = {"birds": {"birds chirping"}, "drums": {"drum kit"}, "speech": {"male speech", "female speech"},
              "cow": {"cow mooing"}, "horse": {"horse neighing"}, "jet plane": {"jet engine"}}


def by_vocabulary(records: list[dict], known: set[str]) -> dict:
    """Mean SDRi of the sources whose class the training corpus has (``known``) and of the others: a class
    never heard cannot be learnt by training longer, only by widening the corpus."""
    split: dict[str, list[float]] = {"known": [], "unknown": []}
    for record in records:
        for label, value in zip(record["classes"], record["scores"]["model"]["sdri"]):
            heard = label in known or bool(SAME_CLASS.get(label, set()) & known)
            split["known" if heard else "unknown"].append(value)
    return {f"sdri_{name}_classes": (sum(values) / len(values) if values else None) for name, values in split.items()} \
        | {f"{name}_class_sources": len(values) for name, values in split.items()}


def shipped_weights(name: str) -> str:
    """The first 12 hex digits of a shipped separator's weights checksum."""
    from bisep.pretrained import asset_folder
    from bisep.files import sha256_file

    return sha256_file(asset_folder("separator", name) / "model.safetensors")[:12]


def score(folder: Path | str, lists: dict[str, Path], limit: int, work: Path, known: set[str] | None = None) -> dict:
    """Scores of one model (a checkpoint folder, or a shipped name for the reference) on every list."""
    from bisep.evaluate.run import evaluate_separator
    from bisep.model_folder import read_model_folder
    from bisep.separator.api import Separator

    separator = None  # loaded only for a list not scored by an earlier invocation
    if isinstance(folder, Path):
        meta, _ = read_model_folder(folder)
        point = {"checkpoint": folder.name, "step": meta.get("provenance", {}).get("global_step")}
    else:  # a shipped name: its scores are kept per weights, since a name is shipped again with new ones
        point = {"checkpoint": folder, "step": None, "weights": shipped_weights(folder)}
    for name, compositions in lists.items():
        out = work / "-".join(filter(None, (point["checkpoint"], point.get("weights")))) / name
        if (out / "results.json").is_file():  # scored by an earlier invocation
            result = json.loads((out / "results.json").read_text())
        else:
            separator = separator or Separator.from_pretrained(folder, device="cpu")
            result = evaluate_separator(separator, compositions, out, oracles=False, jobs=1, limit=limit,
                                        examples=0, progress=False)
        records = json.loads((out / "results.json").read_text())["records"]
        model, mixture = result["summary"]["model"]["overall"], result["summary"]["mixture"]["overall"]
        improvements = [value for record in records for value in record["scores"]["model"]["sdri"]]
        point[name] = {"sdr": model["sdr"]["mean"], "sdri": model["sdri"]["mean"],
                       "si_sdri": model["si_sdri"]["mean"], "mixture_sdr": mixture["sdr"]["mean"],
                       "share_below_mixture": sum(value < 0 for value in improvements) / max(1, len(improvements))}
        if known is not None:
            point[name] |= by_vocabulary(records, known)
    return point


def plot(points: list[dict], names: list[str], title: str, out: Path, reference: dict | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6.5, 3.6), dpi=110)
    steps = [point["step"] for point in points]
    for index, name in enumerate(names):
        line = axes.plot(steps, [point[name]["sdri"] for point in points], "o-", label=f"{name} SDRi")
        split = [point for point in points if point[name].get("unknown_class_sources")]  # lists with unheard classes
        if split:
            axes.plot([point["step"] for point in split], [point[name]["sdri_known_classes"] for point in split], "s--",
                      color=line[0].get_color(), markersize=4, linewidth=1.0,
                      label=f"{name}: classes the corpus has")
        if reference is not None:
            axes.axhline(reference[name]["sdri"], color=line[0].get_color(), linewidth=1.0, linestyle=":",
                         label=f"{reference['checkpoint']} (dotted, per list)" if index == 0 else None)
    axes.axhline(0.0, color="grey", linewidth=0.8, linestyle="--", label="the mixture itself")
    axes.set_xlabel("optimiser step")
    axes.set_ylabel("SDR improvement (dB)")
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--list", dest="lists", action="append", required=True, metavar="NAME=CSV")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--reference", default="", help="A shipped model scored on the same lists (a flat line).")
    parser.add_argument("--out", type=Path, required=True, help="Path without suffix for .json and .png.")
    parser.add_argument("--work", type=Path, help="Folder for the evaluations (default RUN/curves); what is "
                        "there is reused.")
    parser.add_argument("--training-corpus", type=Path, help="Also split each list's SDRi by whether this corpus "
                        "has the source's class (labels compared by name).")
    arguments = parser.parse_args()
    lists = {}
    for item in arguments.lists:
        name, _, path = item.partition("=")
        if not path or not Path(path).is_file():
            sys.exit(f"--list {item}: expected NAME=path/to/compositions.csv of an existing file")
        lists[name] = Path(path)
    checkpoints = sorted((arguments.run / "checkpoints").glob("epoch[0-9]*"))
    if not checkpoints:
        sys.exit(f"{arguments.run}: no checkpoints/epochNNNN folders")
    store = arguments.out.with_suffix(".json")
    points = {p["checkpoint"]: p for p in (json.loads(store.read_text()) if store.is_file() else [])}
    work = arguments.work or arguments.run / "curves"
    known = training_classes(arguments.training_corpus) if arguments.training_corpus else None
    wanted = "sdri_known_classes" if known is not None else "sdri"

    def complete(point: dict) -> bool:
        return all(wanted in point.get(name, {}) for name in lists)

    for folder in checkpoints:
        if folder.name in points and complete(points[folder.name]):
            continue
        points[folder.name] = score(folder, lists, arguments.limit, work, known)
        print(json.dumps(points[folder.name]), flush=True)
        store.parent.mkdir(parents=True, exist_ok=True)
        store.write_text(json.dumps(sorted(points.values(), key=lambda p: p["step"]), indent=1) + "\n")
    reference = None
    if arguments.reference:
        references = store.with_name(store.stem + "_reference.json")
        stored = json.loads(references.read_text()) if references.is_file() else {}
        if (stored.get("checkpoint") != arguments.reference or not complete(stored)
                or stored.get("weights") != shipped_weights(arguments.reference)):
            stored = score(arguments.reference, lists, arguments.limit, work, known)
            references.write_text(json.dumps(stored, indent=1) + "\n")
        reference = stored
        print(json.dumps(reference), flush=True)
    ordered = sorted((p for p in points.values() if p["step"] is not None), key=lambda p: p["step"])
    plot(ordered, list(lists), f"{arguments.run.name}: first {arguments.limit} compositions of each list",
         arguments.out.with_suffix(".png"), reference)
    print(f"wrote {arguments.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
