"""The training config: one YAML preset (``configs/``) validated into these dataclasses, plus overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bisep.separator.model import SeparatorConfig


@dataclass(frozen=True)
class DataConfig:
    """``shards``: a folder of ``bisep data shard`` output; when set, training splits stream from its
    ``<split>-*.tar`` shards through a buffer of ``shuffle_buffer`` clips, and only validation reads ``corpus``."""

    corpus: str = ""
    train_split: str = "train"
    supervised_split: str = "train_sup"
    validation_compositions: str = "valid_2"
    segment_seconds: float | None = 4.0
    clips_per_mixture: int = 2
    phrases_per_clip: int = 3
    sources_per_supervised_mixture: int = 2
    items_per_epoch: int | None = None
    validation_items: int | None = None
    workers: int = 0
    max_failure_share: float = 0.05
    shards: str = ""
    shuffle_buffer: int = 1000


@dataclass(frozen=True)
class LossConfig:
    """Total (weak): ``contrastive * L_CNT + reconstruction * (L_CRL + L_MS)`` (the method: 0.5 and 5).

    ``consistency_weight`` names the magnitude that weights the consistency loss: ``clip`` as the authors'
    code, or ``mixture``, which kept learning from collapsing in the CPU probe (see BENCHMARK.md).
    ``duplicate_text_similarity``: phrases whose text embeddings have at least this cosine similarity are not
    each other's negatives in the contrastive loss (paraphrases of one class in a batch); above 1 only
    identical strings are, as in the authors' setup.
    """

    contrastive: float = 0.5
    reconstruction: float = 5.0
    consistency: float = 1.0
    mix_and_separate: float = 1.0
    supervised: float = 1.0
    consistency_weight: Literal["clip", "mixture"] = "mixture"
    symmetric_contrastive: bool = False
    duplicate_text_similarity: float = 1.01


@dataclass(frozen=True)
class OptimConfig:
    learning_rate: float = 1e-4
    weight_decay: float = 1e-4
    decay_every_epochs: int = 15
    decay_factor: float = 0.1
    gradient_clip: float | None = 5.0
    batch_size: int = 16
    accumulation: int = 1


@dataclass(frozen=True)
class TrainConfig:
    """``batch_size`` is per device and micro-batch; the global batch is batch_size x accumulation x devices.
    BatchNorm statistics and contrastive negatives are per micro-batch, as per GPU in the authors' setup, so
    one process with ``accumulation: 2`` computes what two DDP processes compute."""

    mode: Literal["unsupervised", "weak", "supervised", "semi"] = "weak"
    grounding: str = "builtin"
    out: str = "runs/separator"
    epochs: int = 200
    seed: int = 0
    validate_every_epochs: int = 1
    checkpoint_every_epochs: int = 10
    checkpoint_every_steps: int | None = None
    mixed_precision: bool = True
    threads: int | None = None
    audio_examples: int = 2
    model: SeparatorConfig = field(default_factory=SeparatorConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
