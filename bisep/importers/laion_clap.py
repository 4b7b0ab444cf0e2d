"""LAION-CLAP's own checkpoint layout -> a transformers ``ClapModel`` folder that ``clap:FOLDER`` loads.

LAION's checkpoints (e.g. ``music_audioset_epoch_15_esc_90.14.pt``, unfused HTSAT + RoBERTa; the same tensors sit
under ``net_clap.model.model.`` in the paper authors' checkpoint) name their parts ``audio_branch`` (HTSAT),
``text_branch`` (RoBERTa), ``audio_projection`` / ``text_projection`` (two linear layers with a ReLU) and
``logit_scale_a`` / ``logit_scale_t``. The conversion renames them to transformers' names and splits each
attention's fused ``qkv`` into ``query``, ``key`` and ``value``. It drops what the embeddings never use: the
front end's STFT and mel weights (bisep's :class:`~bisep.grounding.clap_features.ClapLogMel` computes them, and
the mel filters are checked against it), the audio classification head (``tscam_conv``, ``head``) and the
training-only ``audio_transform`` / ``text_transform`` MLPs. The architecture is read from the tensor shapes;
only the text tower's head count is not in them (12, roberta-base's).
"""

from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import torch

from bisep.errors import BisepError
from bisep.grounding.clap_features import slaney_mel_filters
from bisep.importers.safe_load import check_shapes, load_checkpoint, state_dict_of

if TYPE_CHECKING:
    from transformers import ClapConfig, ClapModel

ROBERTA_BASE_HEADS = 12
# roberta-base's config says 1e-5 (transformers' ClapTextConfig defaults to 1e-12).
ROBERTA_LAYER_NORM_EPS = 1e-5
# LAION-CLAP's unfused front end: 48 kHz, 1024-point STFT, hop 480, 64 Slaney mel bands over 50-14000 Hz.
FRONT_END = dict(sample_rate=48000, n_fft=1024, hop_length=480, min_frequency=50.0, max_frequency=14000.0)
TOKENIZER_FILES = "vocab.json and merges.txt (or tokenizer.json)"
WHERE_TO_GET_TOKENIZER = (
    "LAION-CLAP tokenizes with roberta-base's tokenizer: on a machine with internet, save it with "
    "AutoTokenizer.from_pretrained('roberta-base').save_pretrained(FOLDER) and copy the folder here"
)
DROPPED_PREFIXES = {
    "audio_branch.spectrogram_extractor.": "front end STFT (computed by bisep's ClapLogMel)",
    "audio_branch.logmel_extractor.": "front end mel filters (checked, computed by bisep's ClapLogMel)",
    "audio_branch.tscam_conv.": "audio classification head (unused by the embeddings)",
    "audio_branch.head.": "audio classification head (unused by the embeddings)",
    "audio_transform.": "training-only MLP (unused by the embeddings)",
    "text_transform.": "training-only MLP (unused by the embeddings)",
    "text_branch.embeddings.position_ids": "buffer rebuilt by transformers",
}
BLOCK_PARTS = {
    "norm1": "layernorm_before",
    "norm2": "layernorm_after",
    "attn.relative_position_bias_table": "attention.self.relative_position_bias_table",
    "attn.relative_position_index": "attention.self.relative_position_index",
    "attn.proj": "attention.output.dense",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
}
AUDIO_ENCODER = "audio_model.audio_encoder."


def read_laion_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a LAION-CLAP checkpoint file (``state_dict`` entry or bare), ``module.`` removed."""
    return state_dict_of(load_checkpoint(path, "LAION-CLAP checkpoint"), path, "LAION-CLAP checkpoint")


def _count(state: Mapping[str, torch.Tensor], pattern: str) -> int:
    return len({match.group(1) for key in state if (match := re.match(pattern, key))})


def _require(state: Mapping[str, torch.Tensor], key: str, source: str) -> torch.Tensor:
    if key not in state:
        fused = any("fusion" in k or "mel_conv2d" in k for k in state)
        hint = " (this looks like a fused checkpoint; bisep needs an unfused one)" if fused else ""
        raise BisepError(f"{source}: not a LAION-CLAP HTSAT + RoBERTa checkpoint: no {key}{hint}")
    return state[key]


def laion_clap_config(state: Mapping[str, torch.Tensor], source: str = "LAION-CLAP weights",
                      text_heads: int = ROBERTA_BASE_HEADS) -> "ClapConfig":
    """A transformers ``ClapConfig`` read from the shapes of a LAION-CLAP state dict (HTSAT + RoBERTa)."""
    from transformers import ClapConfig

    if any("fusion_model" in key or "mel_conv2d" in key for key in state):
        raise BisepError(f"{source}: a fused LAION-CLAP (enable_fusion=True); bisep supports unfused checkpoints only")
    stages = _count(state, r"audio_branch\.layers\.(\d+)\.")
    if not stages:
        _require(state, "audio_branch.layers.0.blocks.0.norm1.weight", source)
    depths = [_count(state, rf"audio_branch\.layers\.{i}\.blocks\.(\d+)\.") for i in range(stages)]
    tables = [_require(state, f"audio_branch.layers.{i}.blocks.0.attn.relative_position_bias_table", source)
              for i in range(stages)]
    window = (math.isqrt(tables[0].shape[0]) + 1) // 2
    patch = _require(state, "audio_branch.patch_embed.proj.weight", source)
    first_mlp = _require(state, "audio_branch.layers.0.blocks.0.mlp.fc1.weight", source)
    words = _require(state, "text_branch.embeddings.word_embeddings.weight", source)
    text_layers = _count(state, r"text_branch\.encoder\.layer\.(\d+)\.")
    intermediate = _require(state, "text_branch.encoder.layer.0.intermediate.dense.weight", source)
    if words.shape[1] % text_heads:
        raise BisepError(f"{source}: text width {words.shape[1]} is not divisible by {text_heads} heads")
    audio_config = dict(
        window_size=window,
        num_mel_bins=_require(state, "audio_branch.bn0.weight", source).shape[0],
        patch_size=patch.shape[-1],
        patch_stride=[patch.shape[-1], patch.shape[-1]],
        patch_embeds_hidden_size=patch.shape[0],
        hidden_size=_require(state, "audio_branch.norm.weight", source).shape[0],
        depths=depths,
        num_attention_heads=[table.shape[1] for table in tables],
        mlp_ratio=first_mlp.shape[0] / first_mlp.shape[1],
        enable_fusion=False,
    )
    text_config = dict(
        vocab_size=words.shape[0],
        hidden_size=words.shape[1],
        num_hidden_layers=text_layers,
        num_attention_heads=text_heads,
        intermediate_size=intermediate.shape[0],
        max_position_embeddings=_require(state, "text_branch.embeddings.position_embeddings.weight", source).shape[0],
        type_vocab_size=_require(state, "text_branch.embeddings.token_type_embeddings.weight", source).shape[0],
        layer_norm_eps=ROBERTA_LAYER_NORM_EPS,
    )
    projection_dim = _require(state, "audio_projection.2.weight", source).shape[0]
    return ClapConfig(text_config=text_config, audio_config=audio_config, projection_dim=projection_dim)


def _transformers_names(key: str, tensor: torch.Tensor) -> dict[str, torch.Tensor] | None:
    """One LAION tensor -> its transformers tensor(s); None when the key is not part of the layout."""
    if key in ("logit_scale_a", "logit_scale_t"):
        return {key: tensor}
    for laion, name in (("text_projection", "text_projection"), ("audio_projection", "audio_projection")):
        if match := re.fullmatch(rf"{laion}\.([02])\.(weight|bias)", key):
            return {f"{name}.linear{1 if match.group(1) == '0' else 2}.{match.group(2)}": tensor}
    if key.startswith("text_branch."):
        return {"text_model." + key[len("text_branch."):]: tensor}
    for laion, name in (("bn0.", "batch_norm."), ("patch_embed.", "patch_embed."), ("norm.", "norm.")):
        if key.startswith("audio_branch." + laion):
            return {AUDIO_ENCODER + name + key[len("audio_branch." + laion):]: tensor}
    if match := re.fullmatch(r"audio_branch\.layers\.(\d+)\.downsample\.(.+)", key):
        return {f"{AUDIO_ENCODER}layers.{match.group(1)}.downsample.{match.group(2)}": tensor}
    if match := re.fullmatch(r"audio_branch\.layers\.(\d+)\.blocks\.(\d+)\.(.+)", key):
        block = f"{AUDIO_ENCODER}layers.{match.group(1)}.blocks.{match.group(2)}."
        part = match.group(3)
        if qkv := re.fullmatch(r"attn\.qkv\.(weight|bias)", part):
            query, key_part, value = tensor.chunk(3, dim=0)
            kind = qkv.group(1)
            return {f"{block}attention.self.query.{kind}": query, f"{block}attention.self.key.{kind}": key_part,
                    f"{block}attention.self.value.{kind}": value}
        for laion, name in BLOCK_PARTS.items():
            if part == laion or part.startswith(laion + "."):
                return {block + name + part[len(laion):]: tensor}
    return None


def _check_front_end(state: Mapping[str, torch.Tensor], source: str) -> None:
    """The checkpoint's mel filters must be the ones bisep's front end computes (48 kHz, 64 Slaney bands)."""
    mel = state.get("audio_branch.logmel_extractor.melW")
    if mel is None:
        return
    expected = slaney_mel_filters(FRONT_END["n_fft"], mel.shape[1], FRONT_END["min_frequency"],
                                  FRONT_END["max_frequency"], FRONT_END["sample_rate"])
    if mel.shape != expected.shape or not torch.allclose(mel.double(), expected, atol=1e-5, rtol=1e-4):
        raise BisepError(f"{source}: its mel filter bank is not LAION-CLAP's 48 kHz, 50-14000 Hz Slaney bank; "
                         "bisep's front end would not match it")


def convert_laion_clap(state: Mapping[str, torch.Tensor], source: str = "LAION-CLAP weights",
                       text_heads: int = ROBERTA_BASE_HEADS) -> tuple["ClapModel", dict]:
    """A LAION-CLAP state dict -> a transformers ``ClapModel`` (eval mode) and a record of what went where."""
    from transformers import ClapModel

    config = laion_clap_config(state, source, text_heads)
    _check_front_end(state, source)
    converted: dict[str, torch.Tensor] = {}
    dropped: dict[str, list[str]] = {}
    unknown = []
    for key, tensor in state.items():
        reason = next((why for prefix, why in DROPPED_PREFIXES.items() if key.startswith(prefix)), None)
        if reason is not None:
            dropped.setdefault(reason, []).append(key)
            continue
        names = _transformers_names(key, tensor)
        if names is None:
            unknown.append(key)
        else:
            converted.update(names)
    if unknown:
        raise BisepError(f"{source}: {len(unknown)} tensors outside LAION-CLAP's HTSAT + RoBERTa layout "
                         f"(e.g. {', '.join(unknown[:3])})")
    model = ClapModel(config).eval()
    expected = model.state_dict()
    # Buffers transformers builds itself (token positions and types) are not in LAION's files.
    for key in ("text_model.embeddings.position_ids", "text_model.embeddings.token_type_ids"):
        if key in expected and key not in converted:
            converted[key] = expected[key]
    check_shapes(converted, expected, Path(source), "LAION-CLAP weights")
    for key, tensor in converted.items():
        if key.endswith("relative_position_index") and not torch.equal(tensor.to(expected[key].dtype), expected[key]):
            raise BisepError(f"{source}: {key} differs from the window layout transformers builds")
    model.load_state_dict({key: tensor.to(expected[key].dtype) for key, tensor in converted.items()}, strict=True)
    record = {
        "converted_tensors": len(state) - sum(len(keys) for keys in dropped.values()),
        "dropped": {reason: len(keys) for reason, keys in dropped.items()},
        "text_attention_heads": text_heads,
    }
    return model, record


def check_tokenizer_folder(folder: str | Path | None) -> Path:
    """The folder with RoBERTa's tokenizer files, or a one-line error naming them and where users get them."""
    if folder is None:
        raise BisepError(f"converting LAION-CLAP needs the RoBERTa tokenizer files ({TOKENIZER_FILES}): pass "
                         f"--tokenizer FOLDER; {WHERE_TO_GET_TOKENIZER}")
    folder = Path(folder).expanduser()
    present = {path.name for path in folder.iterdir()} if folder.is_dir() else set()
    if "tokenizer.json" not in present and not {"vocab.json", "merges.txt"} <= present:
        problem = "no such folder" if not folder.is_dir() else "missing " + ", ".join(
            name for name in ("vocab.json", "merges.txt") if name not in present)
        raise BisepError(f"tokenizer folder {folder}: {problem}; it must hold {TOKENIZER_FILES}; "
                         f"{WHERE_TO_GET_TOKENIZER}")
    return folder


def save_clap_folder(model: "ClapModel", tokenizer_folder: str | Path, folder: str | Path) -> Path:
    """Write ``model`` (safetensors), the RoBERTa tokenizer and LAION's unfused front-end settings as a
    transformers folder that :func:`bisep.grounding.clap.load_clap` reads, offline. Written beside ``folder``
    and renamed into place."""
    from transformers import ClapFeatureExtractor, RobertaTokenizer

    tokenizer_folder = check_tokenizer_folder(tokenizer_folder)
    try:
        tokenizer = RobertaTokenizer.from_pretrained(tokenizer_folder, local_files_only=True)
    except (OSError, ValueError) as error:
        message = " ".join(str(error).split())[:200]
        raise BisepError(f"tokenizer folder {tokenizer_folder}: cannot load it ({message}); "
                         f"{WHERE_TO_GET_TOKENIZER}") from None
    folder = Path(folder)
    staging = folder.parent / f".{folder.name}.writing-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    ClapFeatureExtractor(
        feature_size=model.config.audio_config.num_mel_bins, sampling_rate=FRONT_END["sample_rate"],
        hop_length=FRONT_END["hop_length"], fft_window_size=FRONT_END["n_fft"],
        frequency_min=FRONT_END["min_frequency"], frequency_max=FRONT_END["max_frequency"],
        truncation="rand_trunc", padding="repeatpad",
    ).save_pretrained(staging)
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    return folder
