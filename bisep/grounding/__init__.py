"""Grounding (audio-language) models behind one interface: LAION-CLAP from a local folder, or the built-in one."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from bisep.errors import BisepError
from bisep.grounding.base import GroundingModel, TextFeatures

__all__ = ["GroundingModel", "TextFeatures", "load_grounding"]


def load_grounding(spec: str | Path = "builtin", device: str | torch.device = "cpu") -> GroundingModel:
    """Resolve a grounding model: a shipped name (``builtin``), ``clap:/path/to/clap-folder``, or a folder
    holding either a built-in model or a transformers ``ClapModel``. Returned frozen, in eval mode."""
    text = str(spec)
    if text.startswith("clap:"):
        from bisep.grounding.clap import load_clap

        return load_clap(text[len("clap:"):], device=device).freeze()
    path = Path(text).expanduser()
    if path.is_dir():
        kind = _folder_kind(path)
        if kind == "clap":
            from bisep.grounding.clap import load_clap

            return load_clap(path, device=device).freeze()
        from bisep.grounding.builtin import load_builtin

        return load_builtin(path, device=device)
    if "/" in text or text.startswith("."):
        raise BisepError(f"{text}: grounding model folder not found")
    from bisep.grounding.builtin import load_builtin
    from bisep.pretrained import asset_folder

    return load_builtin(asset_folder("grounding", text), device=device)


def _folder_kind(path: Path) -> str:
    config = path / "config.json"
    try:
        data = json.loads(config.read_text()) if config.is_file() else {}
    except json.JSONDecodeError:
        raise BisepError(f"{config}: not valid JSON") from None
    return "clap" if data.get("model_type") == "clap" else "builtin"
