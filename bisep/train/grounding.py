"""Training the built-in audio-language model on a corpus's ``grounding`` split.

Symmetric InfoNCE with a learnable temperature, where every text that describes the same set of classes
counts as a positive (so two violin clips in one batch are not pushed apart). A mixture's positive is the
caption of the whole mixture, never one of its sources' phrases alone: that is what lets the model tell a
clean source from the same source with something else still in it, the property the weak separation losses
rely on. To make the model see exactly that contrast, each batch also holds on-the-fly mixtures of its clips
with other clips (at -12..0 dB) captioned as mixtures, beside the clean originals (hard negatives).
Augmentation: gain, circular time shift, background noise, and other seen phrasings of the same classes.
The shipped recipe (the defaults) adds text noise, a ranking term and rewording. ``text_noise``: Gaussian noise
on the frozen sentence vectors, so the projection does not over-fit the few seen phrasings of each class.
``class_ranking``: each clip and mixture ranks one seen phrasing per class, audio-to-text only, with a target
spread over its own classes; with ``ranking_by_level`` the added clip of an on-the-fly mixture gets its
amplitude's share of that target, so 2-source mixtures rank both sources' phrases high while a louder addition
still moves a mixture further from the main clip's phrase (the leakage ordering). ``rewording``: each seen
phrasing drawn for a caption or the ranking term is framed by a template or loses words with this probability
(bisep.train.rewording), so the projection sees more ways of saying each class than the corpus lists.
``partial_positive`` (off) makes a text naming only some of a mixture's sources a weak positive in both InfoNCE
directions; it hurts the leakage ordering, because in the text-to-audio direction it rewards a source's phrase
for finding the source with leakage. What each choice scored: docs/models.md.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bisep.audio import load_audio
from bisep.data.corpus import corpus_world
from bisep.data.format import Dataset
from bisep.evaluate.grounding import class_embeddings, embed_audio, rms
from bisep.grounding.builtin import BuiltinGrounding, BuiltinGroundingConfig, load_builtin
from bisep.losses import class_ranking_loss, multi_positive_infonce
from bisep.train.rewording import reword

CONNECTIVES = ("{} while {}", "{} and {}", "{} with {} in the background", "{} as {}", "{} followed by {}")


@dataclass(frozen=True)
class GroundingTrainingConfig:
    """Defaults: the recipe of the shipped ``builtin`` model (docs/models.md)."""

    steps: int = 900
    batch_size: int = 64
    mixed_share: float = 0.5
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    noise_probability: float = 0.3
    partial_positive: float = 0.0
    text_noise: float = 0.6
    class_ranking: float = 1.0
    ranking_by_level: bool = True
    rewording: float = 0.5
    seed: int = 0
    validate_every: int = 300
    threads: int = 2
    # a built-in grounding model folder to start from (its model config replaces the given one): fine-tuning on a
    # grown corpus keeps the embedding space a separator trained against the old model already conditions on
    init: str = ""


@dataclass
class CaptionedClips:
    """A split in memory: waveforms ``(N, samples)``, captions, label sets and per-class phrasings."""

    audio: torch.Tensor
    captions: list[str]
    labels: list[frozenset[str]]
    phrasings: dict[str, list[str]]
    sample_rate: int


def load_split(dataset: Dataset, split: str, phrasings: dict[str, list[str]]) -> CaptionedClips:
    ids = dataset.split(split)
    waves = [load_audio(dataset.audio_path(i), sample_rate=16000, channels=1)[0][0] for i in ids]
    length = min(w.shape[0] for w in waves)
    return CaptionedClips(
        torch.stack([w[:length] for w in waves]),
        [dataset.clips[i]["caption"] for i in ids],
        [frozenset(dataset.clips[i]["labels"]) for i in ids],
        phrasings,
        16000,
    )


def corpus_manifest(dataset: Dataset) -> dict:
    return json.loads((dataset.root / "manifest.json").read_text())


def class_phrasings(dataset: Dataset) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Seen and held-out phrasings per class, from the corpus manifest."""
    manifest = corpus_manifest(dataset)
    seen = {c["name"]: list(c["phrasings"]) for c in manifest["classes"]}
    held_out = {c["name"]: list(c["held_out_phrasings"]) for c in manifest["classes"]}
    return seen, held_out


def _plain(caption: str) -> str:
    caption = caption.strip().rstrip(".")
    return caption[0].lower() + caption[1:] if caption else caption


def make_batch(clips: CaptionedClips, config: GroundingTrainingConfig, rng: np.random.Generator):
    """Waveforms ``(B', samples)``, captions, label sets and class shares (the class-ranking targets): clean
    clips plus mixtures made from them."""
    count = len(clips.captions)
    chosen = rng.choice(count, size=config.batch_size, replace=False)
    waves, captions, labels, shares = [], [], [], []
    for index in chosen:
        waves.append(clips.audio[index])
        captions.append(_reword(clips, int(index), rng, config.rewording))
        labels.append(clips.labels[index])
        shares.append(uniform_shares(clips.labels[index]))
    for position in range(int(config.batch_size * config.mixed_share)):
        index = int(chosen[position])
        other = int(rng.integers(count))
        while clips.labels[other] & clips.labels[index]:
            other = int(rng.integers(count))
        relative_db = float(rng.uniform(-12.0, 0.0))
        main, added = clips.audio[index], clips.audio[other]
        added = added * rms(main) / rms(added) * 10 ** (relative_db / 20)
        waves.append(main + added)
        first = _reword(clips, index, rng, config.rewording)
        second = _reword(clips, other, rng, config.rewording)
        if relative_db > -4 and rng.random() < 0.5:
            first, second = second, first
        captions.append(str(rng.choice(CONNECTIVES)).format(first, second))
        labels.append(clips.labels[index] | clips.labels[other])
        if config.ranking_by_level:
            added_share = level_share(relative_db)
            shares.append(uniform_shares(clips.labels[index], 1 - added_share)
                          | uniform_shares(clips.labels[other], added_share))
        else:
            shares.append(uniform_shares(labels[-1]))
    batch = torch.stack(waves)
    shifts = rng.integers(0, batch.shape[1], size=batch.shape[0])
    batch = torch.stack([torch.roll(w, int(s)) for w, s in zip(batch, shifts)])
    gains = torch.from_numpy(10 ** (rng.uniform(-6, 6, size=(batch.shape[0], 1)) / 20)).float()
    batch = batch * gains
    noisy = torch.from_numpy(rng.random(batch.shape[0]) < config.noise_probability)
    noise_level = torch.from_numpy(10 ** (rng.uniform(-40, -25, size=(batch.shape[0], 1)) / 20)).float()
    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    noise = torch.randn(batch.shape, generator=generator) * rms(batch) * noise_level
    batch = batch + noise * noisy[:, None]
    return batch, captions, labels, shares


def uniform_shares(labels: frozenset[str], total: float = 1.0) -> dict[str, float]:
    """``total`` split evenly over ``labels``: a clip's classes are equally present as far as its caption says."""
    return {label: total / len(labels) for label in labels}


def level_share(relative_db: float) -> float:
    """The added clip's share of a mixture's class-ranking target: its amplitude's share of the two (0.2 at
    -12 dB, 0.33 at -6 dB, 0.5 at 0 dB). A louder addition then moves the mixture further from the main
    clip's phrase, the ordering the weak losses rely on, instead of asking every level to match both equally."""
    amplitude = 10 ** (relative_db / 20)
    return amplitude / (1 + amplitude)


def _reword(clips: CaptionedClips, index: int, rng: np.random.Generator, rewording: float = 0.0) -> str:
    """The clip's caption, or (half the time) its classes said with other seen phrasings, each reworded
    (framed, words deleted) with probability ``rewording``."""
    labels = sorted(clips.labels[index])
    if rng.random() < 0.5 or any(label not in clips.phrasings for label in labels):
        return _plain(clips.captions[index])
    phrases = [reword(str(rng.choice(clips.phrasings[label])), rng, rewording)
               for label in rng.permutation(labels)]
    text = phrases[0]
    for phrase in phrases[1:]:
        text = str(rng.choice(CONNECTIVES[:2])).format(text, phrase)
    return text


def match_weights(labels: list[frozenset[str]], partial: float) -> torch.Tensor:
    """``(B, B)`` target weights of audio ``i`` and text ``j``: 1 when they name the same classes, ``partial``
    when the text names only some of the audio's classes (a source of a mixture), else 0. A partial match
    weighs less than the whole caption, so a clean source still outranks the same source with leakage."""
    return torch.tensor([[1.0 if a == b else (partial if b < a else 0.0) for b in labels] for a in labels])


def class_share_targets(shares: list[dict[str, float]], names: list[str]) -> torch.Tensor:
    """``(clips, classes)`` class-ranking targets: each clip's share of each of ``names`` (0 for other classes)."""
    return torch.tensor([[row.get(name, 0.0) for name in names] for row in shares])


def zero_shot_accuracy(model: BuiltinGrounding, clips: CaptionedClips, batch: int = 64) -> float:
    """Top-1 class accuracy of single-source clips against each class's seen phrasings (averaged)."""
    names = sorted(clips.phrasings)
    class_texts = class_embeddings(model, {n: clips.phrasings[n] for n in names})
    audio = embed_audio(model, clips.audio, clips.sample_rate, batch)
    predicted = (audio @ class_texts.T).argmax(1)
    truth = torch.tensor([names.index(next(iter(labels))) for labels in clips.labels])
    return float((predicted == truth).float().mean())


def train_grounding(
    corpus: str | Path,
    out: str | Path,
    config: GroundingTrainingConfig = GroundingTrainingConfig(),
    model_config: BuiltinGroundingConfig = BuiltinGroundingConfig(),
    log=print,
) -> dict:
    """Train on ``corpus``'s grounding split, validate on its valid split, save the best model to ``out``."""
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    dataset = Dataset.open(corpus)
    seen, _ = class_phrasings(dataset)
    started = time.perf_counter()
    world = corpus_world(corpus_manifest(dataset))
    train = load_split(dataset, "grounding", seen)
    valid = load_split(dataset, "valid", seen)
    log(f"loaded {len(train.captions)} grounding clips and {len(valid.captions)} valid clips "
        f"({time.perf_counter() - started:.0f} s)")
    if config.init:
        start = load_builtin(config.init)
        model = BuiltinGrounding(start.config)
        model.load_state_dict(start.state_dict())
        log(f"starting from {config.init}")
    else:
        model = BuiltinGrounding(model_config)
    trainable = [p for name, p in model.named_parameters() if not name.startswith("text.")]
    optimiser = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    warmup = max(1, config.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / warmup)
        * 0.5 * (1 + math.cos(math.pi * min(step, config.steps) / config.steps)))
    pooled_cache: dict[str, torch.Tensor] = {}

    def pooled_sentences(texts: list[str]) -> torch.Tensor:
        """Frozen MiniLM sentence vectors ``(len(texts), 384)``, each text encoded once per training run."""
        unique = sorted(set(texts) - set(pooled_cache))
        if unique:
            pooled_cache.update(zip(unique, model.text.sentence_vectors(unique)))
        return torch.stack([pooled_cache[text] for text in texts])

    class_names = sorted(train.phrasings)
    best, history = -1.0, []
    for step in range(1, config.steps + 1):
        model.train()
        waves, captions, labels, shares = make_batch(train, config, rng)
        pooled = pooled_sentences(captions)
        if config.text_noise:
            generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
            pooled = pooled + config.text_noise * pooled.pow(2).mean(1, keepdim=True).sqrt() * torch.randn(
                pooled.shape, generator=generator)
        text = nn.functional.normalize(model.text_projection(pooled), dim=-1)
        audio = model.encode_audio(waves, train.sample_rate)
        logits = model.logit_scale * audio @ text.T
        loss = multi_positive_infonce(logits, match_weights(labels, config.partial_positive))
        if config.class_ranking:
            class_texts = [reword(str(rng.choice(train.phrasings[name])), rng, config.rewording)
                           for name in class_names]
            class_text = nn.functional.normalize(model.text_projection(pooled_sentences(class_texts)), dim=-1)
            ranking = class_ranking_loss(model.logit_scale * audio @ class_text.T,
                                         class_share_targets(shares, class_names))
            loss = loss + config.class_ranking * ranking
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(trainable, 5.0)
        optimiser.step()
        schedule.step()
        if step % config.validate_every == 0 or step == config.steps:
            model.eval()
            accuracy = zero_shot_accuracy(model, valid)
            elapsed = time.perf_counter() - started
            history.append({"step": step, "loss": float(loss.detach()), "valid_accuracy": accuracy, "seconds": elapsed})
            log(f"step {step}: loss {float(loss.detach()):.3f}, valid zero-shot accuracy {accuracy:.3f}, "
                f"scale {float(model.logit_scale.detach()):.1f}, {elapsed:.0f} s")
            if accuracy > best:
                best = accuracy
                model.save(out, {"corpus": str(Path(corpus).name), "world": world, "step": step,
                                 "history": history, "training": asdict(config)})
    return {"best_valid_accuracy": best, "history": history, "seconds": time.perf_counter() - started}
