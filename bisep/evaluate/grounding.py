"""How well a grounding model grounds: zero-shot classification, retrieval, 2-source ranking, paraphrases,
and leakage sensitivity (a clean source must match its phrase better than the same source with another
sound still in it: the property the weak separation losses rely on). Runs on a corpus's ``test`` split, or on
its ``valid`` split to compare training recipes without looking at the test split. ``bisep grounding train``
validates with the same class embeddings and audio embedding loop.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bisep.audio import load_audio
from bisep.data.format import Dataset
from bisep.files import atomic_path, write_json_atomic
from bisep.grounding.base import GroundingModel

LEAKAGE_LEVELS_DB = (-6.0, 0.0)
VALIDATION_PHRASINGS = Path(__file__).with_name("validation_phrasings.json")


def unseen_phrasings(manifest: dict, split: str) -> tuple[dict[str, list[str]], str]:
    """Phrasings never seen in training, per class, and where they come from: on the test split the corpus's
    held-out ones; on other splits bisep's own validation paraphrases of the built-in classes, so that
    choosing a recipe on the valid split never looks at the test split's paraphrases (corpora with other
    classes fall back to their held-out phrasings)."""
    held_out = {c["name"]: c["held_out_phrasings"] for c in manifest["classes"]}
    own = json.loads(VALIDATION_PHRASINGS.read_text())["classes"]
    if split == "test" or not set(held_out) <= set(own):
        return held_out, "held_out_phrasings"
    return {name: own[name] for name in held_out}, "validation_phrasings"


def class_embeddings(model: GroundingModel, phrasings: dict[str, list[str]]) -> torch.Tensor:
    """``(classes, D)``: the normalised mean embedding of each class's phrasings."""
    return torch.stack([nn.functional.normalize(model.encode_text(phrasings[name]).embedding.mean(0), dim=0)
                        for name in phrasings])


@torch.no_grad()
def embed_audio(model: GroundingModel, waves: torch.Tensor, sample_rate: int, batch: int = 32) -> torch.Tensor:
    """``(N, samples)`` at ``sample_rate`` Hz -> ``(N, D)`` normalised embeddings, ``batch`` clips at a time."""
    return torch.cat([model.encode_audio(waves[i:i + batch], sample_rate) for i in range(0, len(waves), batch)])


def rms(waves: torch.Tensor) -> torch.Tensor:
    """``(..., samples)`` -> ``(..., 1)`` root mean square, at least 1e-5 (-100 dBFS) so that scaling one clip
    to another's level never divides by zero on a silent clip."""
    return waves.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-5)


def evaluate_grounding(model: GroundingModel, corpus: str | Path, out: str | Path | None = None,
                       split: str = "test") -> dict:
    """All figures on ``split`` (single-source clips) and its 2-source list ``{split}_2``; writes
    ``grounding_eval.json`` and ``confusion.png`` into ``out``."""
    dataset = Dataset.open(corpus)
    manifest = json.loads((dataset.root / "manifest.json").read_text())
    seen = {c["name"]: c["phrasings"] for c in manifest["classes"]}
    held_out, unseen_source = unseen_phrasings(manifest, split)
    names = sorted(seen)
    ids = dataset.split(split)
    rate = dataset.sample_rate
    waves = [load_audio(dataset.audio_path(i), sample_rate=rate, channels=1)[0][0] for i in ids]
    length = min(w.shape[0] for w in waves)
    audio = torch.stack([w[:length] for w in waves])
    truth = torch.tensor([names.index(dataset.clips[i]["labels"][0]) for i in ids])
    audio_embeddings = embed_audio(model, audio, rate)

    results: dict = {"split": split, "unseen_phrasings": unseen_source, "clips": len(ids), "classes": len(names),
                     "grounding": model.name}
    seen_classes = class_embeddings(model, {n: seen[n] for n in names})
    similarity = audio_embeddings @ seen_classes.T
    predicted = similarity.argmax(1)
    results["zero_shot_top1_seen"] = float((predicted == truth).float().mean())
    held_classes = class_embeddings(model, {n: held_out[n] for n in names})
    results["zero_shot_top1_held_out"] = float(((audio_embeddings @ held_classes.T).argmax(1) == truth).float().mean())
    results["zero_shot_top1_single_prompt_seen"] = _single_prompt_accuracy(model, audio_embeddings, truth, seen, names)
    results["zero_shot_top1_single_prompt_held_out"] = _single_prompt_accuracy(
        model, audio_embeddings, truth, held_out, names)

    queries = [(n, p) for n in names for p in seen[n]]
    query_embeddings = model.encode_text([p for _, p in queries]).embedding
    ranking = (query_embeddings @ audio_embeddings.T).argsort(1, descending=True)
    query_truth = torch.tensor([names.index(n) for n, _ in queries])
    results["text_to_audio_R@1"] = float((truth[ranking[:, 0]] == query_truth).float().mean())
    results["text_to_audio_R@5"] = float((truth[ranking[:, :5]] == query_truth[:, None]).any(1).float().mean())

    pairs = dataset.compositions(f"{split}_2")
    index_of = {clip_id: n for n, clip_id in enumerate(ids)}
    first = torch.tensor([index_of[m[0]] for _, m in pairs])
    second = torch.tensor([index_of[m[1]] for _, m in pairs])
    mixtures = (audio[first] + audio[second]) / 2
    mixture_similarity = embed_audio(model, mixtures, rate) @ seen_classes.T
    top3 = mixture_similarity.topk(3, dim=1).indices
    both = ((top3 == truth[first][:, None]).any(1) & (top3 == truth[second][:, None]).any(1))
    results["two_source_both_in_top3"] = float(both.float().mean())
    results["leakage"] = _leakage(model, audio, audio_embeddings, first, second, ids, dataset, rate)
    results["paraphrase_gap_points"] = 100 * (results["zero_shot_top1_seen"] - results["zero_shot_top1_held_out"])
    confusion = np.zeros((len(names), len(names)), int)
    for t, p in zip(truth.tolist(), predicted.tolist()):
        confusion[t, p] += 1
    if out is not None:
        out = Path(out)
        write_json_atomic(out / "grounding_eval.json", results)
        _plot_confusion(confusion, names, out / "confusion.png", results["zero_shot_top1_seen"], split)
    return results


def _single_prompt_accuracy(model, audio_embeddings, truth, phrasings, names) -> float:
    """Mean accuracy when each class is named by one phrasing (the k-th of each class, k over phrasings)."""
    count = min(len(phrasings[n]) for n in names)
    scores = []
    for k in range(count):
        text = model.encode_text([phrasings[n][k] for n in names]).embedding
        scores.append(float(((audio_embeddings @ text.T).argmax(1) == truth).float().mean()))
    return float(np.mean(scores))


def _leakage(model, audio, audio_embeddings, first, second, ids, dataset, rate) -> dict:
    """For each test pair (s, o): similarity of s's phrase to s, to s + o at -6 dB and to s + o at 0 dB."""
    phrases = model.encode_text([dataset.clips[ids[i]]["phrases"][0] for i in first.tolist()]).embedding
    clean = (audio_embeddings[first] * phrases).sum(1)
    levels = []
    for level_db in LEAKAGE_LEVELS_DB:
        source, other = audio[first], audio[second]
        other = other * rms(source) / rms(other) * 10 ** (level_db / 20)
        levels.append((embed_audio(model, source + other, rate) * phrases).sum(1))
    ordered = (clean > levels[0]) & (levels[0] > levels[1])
    return {
        "pairs": int(len(first)),
        "ordered_share": float(ordered.float().mean()),
        "clean_above_minus6_share": float((clean > levels[0]).float().mean()),
        "mean_similarity_clean": float(clean.mean()),
        "mean_drop_clean_to_minus6db": float((clean - levels[0]).mean()),
        "mean_drop_minus6db_to_0db": float((levels[0] - levels[1]).mean()),
    }


def _plot_confusion(confusion: np.ndarray, names: list[str], path: Path, accuracy: float, split: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axis = pyplot.subplots(figsize=(10, 9))
    axis.imshow(confusion / np.maximum(confusion.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    axis.set_yticks(range(len(names)), names, fontsize=7)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"zero-shot classification, {split} split (top-1 {accuracy:.1%})")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    pyplot.close(figure)
