"""A separator model folder: ``config.json`` (class, constructor config, library versions, provenance such as
the grounding model) and ``model.safetensors``, with no pickle. ``bisep train`` writes it (plus ``state.pt``
for resuming) and ``Separator.from_pretrained`` reads it, so it lives in the library, not in the trainer.
The folder is written beside its destination and renamed into place, so a crash mid-write leaves the previous
one intact.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch

from bisep import __version__
from bisep.errors import BisepError
from bisep.files import replace_folder, write_json_atomic

MODEL_KIND = "bisep-separator"


def write_model_folder(folder: str | Path, model: torch.nn.Module, model_config: Any, provenance: dict,
                       training_state: dict | None = None, extra: Callable[[Path], None] | None = None) -> Path:
    """Write ``config.json``, ``model.safetensors`` (and ``state.pt``) into ``folder`` atomically; ``extra`` may
    write further files (e.g. a converted grounding model) into the staging folder before it moves into place."""
    from safetensors.torch import save_file

    folder = Path(folder)
    staging = folder.parent / f".{folder.name}.writing-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
        save_file(state, str(staging / "model.safetensors"))
        write_json_atomic(staging / "config.json", {
            "kind": MODEL_KIND,
            "class": type(model).__name__,
            "config": asdict(model_config),
            "versions": {"bisep": __version__, "torch": torch.__version__},
            "provenance": provenance,
        })
        if training_state is not None:
            torch.save(training_state, staging / "state.pt")
        if extra is not None:
            extra(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return replace_folder(staging, folder)


def read_model_folder(folder: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(config.json contents, tensors)``; a missing, corrupt or foreign folder is a one-line error."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise BisepError(f"{folder}: not a bisep model folder (expected config.json and model.safetensors)")
    try:
        meta = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BisepError(f"{config_path}: not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("kind") != MODEL_KIND:
        raise BisepError(f"{config_path}: not a bisep separator config")
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError) as error:
        raise BisepError(f"{weights_path}: corrupt weights ({error})") from None
    return meta, tensors
