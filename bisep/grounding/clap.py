"""LAION-CLAP (HTSAT audio tower, RoBERTa text tower, unfused) as a grounding model, via HuggingFace transformers.

Loaded only from a local folder, never from the network: a ``ClapModel`` and its ``ClapProcessor`` saved with
``save_pretrained``. The audio side runs bisep's torch log-mel front end (:class:`ClapLogMel`) instead of the
numpy ``ClapFeatureExtractor``, so the bi-modal loss back-propagates from the embedding into the waveform.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from torch import nn

from bisep.errors import BisepError
from bisep.grounding.base import GroundingModel
from bisep.grounding.clap_features import ClapLogMel

if TYPE_CHECKING:
    from transformers import ClapModel

SAFETENSORS_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
EXPECTED_FILES = (
    "config.json, model.safetensors (or pytorch_model.bin), preprocessor_config.json, tokenizer_config.json and "
    "tokenizer.json (or vocab.json + merges.txt)"
)
WHERE_TO_GET = (
    "on a machine with internet, load the Hugging Face model laion/clap-htsat-unfused with ClapModel and "
    "ClapProcessor, save both into one folder with save_pretrained, then pass that folder"
)
# LAION-CLAP was trained on prompts tokenized to at most 77 tokens; longer ones are cut the same way.
MAX_TEXT_TOKENS = 77


def _folder_error(folder: Path, problem: str) -> BisepError:
    return BisepError(f"CLAP folder {folder}: {problem}; it must hold {EXPECTED_FILES} ({WHERE_TO_GET})")


class ClapGrounding(GroundingModel):
    """LAION-CLAP behind the grounding interface.

    ``embedding_dim`` is the joint space's size (``projection_dim``, 512 for LAION's checkpoints), ``token_dim``
    the text tower's width (768). Audio enters at 48 kHz; clips are brought to 10 s by the front end
    (repeat-padded if shorter, centre-cropped if longer).
    """

    name = "clap"

    def __init__(self, model: "ClapModel", tokenizer: Any, front_end: ClapLogMel):
        super().__init__()
        if model.config.audio_config.enable_fusion:
            raise BisepError("fused LAION-CLAP (enable_fusion=True) is not supported; use an unfused checkpoint")
        self.model = model
        self.tokenizer = tokenizer
        self.front_end = front_end
        self.sample_rate = front_end.sample_rate
        self.embedding_dim = model.config.projection_dim
        self.token_dim = model.config.text_config.hidden_size
        self.context_length = MAX_TEXT_TOKENS

    @property
    def logit_scale(self) -> torch.Tensor:
        """``exp(logit_scale_a)``: ClapModel scales audio-to-text logits (``logits_per_audio``) by the audio
        scale and text-to-audio ones by ``logit_scale_t``; the contrastive loss goes from audio to text."""
        return self.model.logit_scale_a.exp()

    def _encode_text_batch(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The text tower and its projection called directly: one pass gives both the pooled joint embedding
        and the per-token states (``get_text_features`` returns a tensor in transformers 4 and a model output in
        5; this works with both). Padded to 77 tokens when ``pad_to_context``, as LAION-CLAP's own tokenizer and
        the authors' code pad every prompt."""
        padding = "max_length" if self.pad_to_context else True
        batch = self.tokenizer(
            prompts, padding=padding, truncation=True, max_length=MAX_TEXT_TOKENS, return_tensors="pt"
        ).to(self._device())
        text = self.model.text_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        embedding = nn.functional.normalize(self.model.text_projection(text.pooler_output), dim=-1)
        return embedding, text.last_hidden_state, batch["attention_mask"].bool()

    def _embed_audio(self, waveform: torch.Tensor) -> torch.Tensor:
        """``(B, samples)`` at 48 kHz -> log-mel ``(B, 1, 1001, 64)`` -> HTSAT -> projection -> ``(B, D)``
        normalised. ``is_longer`` is all False: the unfused model ignores it."""
        features = self.front_end(waveform.to(self.model.dtype))
        is_longer = torch.zeros(waveform.shape[0], 1, dtype=torch.bool, device=waveform.device)
        audio = self.model.audio_model(input_features=features, is_longer=is_longer)
        return nn.functional.normalize(self.model.audio_projection(audio.pooler_output), dim=-1)


def _check_folder(folder: Path) -> None:
    """Name every missing piece at once, before transformers sees the folder (and could reach for the hub)."""
    if not folder.is_dir():
        raise _folder_error(folder, "no such folder")
    present = {path.name for path in folder.iterdir()}
    required = ("config.json", "preprocessor_config.json", "tokenizer_config.json")
    missing = [name for name in required if name not in present]
    if not present & {*SAFETENSORS_WEIGHTS, *PICKLE_WEIGHTS}:
        missing.append("model.safetensors (or pytorch_model.bin)")
    if "tokenizer.json" not in present and not {"vocab.json", "merges.txt"} <= present:
        missing.append("tokenizer.json (or vocab.json + merges.txt)")
    if missing:
        raise _folder_error(folder, "missing " + ", ".join(missing))
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _folder_error(folder, f"config.json is not readable JSON ({error})") from None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type != "clap":
        raise _folder_error(folder, f"config.json describes model_type {model_type!r}, not a CLAP model ('clap')")


def load_clap(path: str | Path, device: torch.device | str = "cpu") -> ClapGrounding:
    """LAION-CLAP from a local folder, in eval mode on ``device``; call ``.freeze()`` before it supervises.

    Nothing is downloaded (``local_files_only=True`` everywhere, whatever the environment says). Weights come
    from ``model.safetensors`` when present; a ``pytorch_model.bin`` is read with ``torch.load(weights_only=True)``,
    which refuses pickled code.
    """
    folder = Path(path).expanduser()
    _check_folder(folder)
    try:
        from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel
    except ImportError:
        raise BisepError("the clap grounding model needs HuggingFace transformers: pip install transformers") from None
    use_safetensors = any((folder / name).exists() for name in SAFETENSORS_WEIGHTS)
    try:
        model = ClapModel.from_pretrained(
            folder, local_files_only=True, use_safetensors=use_safetensors, weights_only=True
        )
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        extractor = ClapFeatureExtractor.from_pretrained(folder, local_files_only=True)
    except pickle.UnpicklingError:
        raise _folder_error(folder, "pytorch_model.bin holds pickled objects that are not tensors, refused") from None
    except (OSError, ValueError, SafetensorError) as error:
        message = " ".join(str(error).split())
        raise _folder_error(folder, f"cannot load it ({type(error).__name__}: {message})") from None
    front_end = ClapLogMel.from_extractor(extractor)
    if front_end.mel_filters.shape[0] != model.config.audio_config.num_mel_bins:
        raise _folder_error(
            folder,
            f"preprocessor_config.json gives {front_end.mel_filters.shape[0]} mel bins but the model expects "
            f"{model.config.audio_config.num_mel_bins}",
        )
    return ClapGrounding(model, tokenizer, front_end).to(device).eval()
