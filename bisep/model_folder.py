"""The one model folder format: ``config.json`` (``kind``, class, constructor config, library versions,
provenance such as the grounding model a separator was trained with) and ``model.safetensors``, with no pickle.

Separators (``bisep train``, ``bisep import``) and the built-in grounding model (``bisep grounding train``) are
written and read here, so the library owns the format and the trainers only call it. ``kind`` says what a
folder holds, so a separator given where a grounding model is expected (or the reverse) is a one-line error.
A folder is written beside its destination and renamed into place: a crash mid-write leaves the previous one
intact.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from bisep.version import __version__
from bisep.errors import BisepError
from bisep.files import replace_folder, write_json_atomic

SEPARATOR_KIND = "bisep-separator"
BUILTIN_GROUNDING_KIND = "bisep-builtin-grounding"


def write_model_folder(folder: str | Path, model: torch.nn.Module, model_config: Any, provenance: dict,
                       training_state: dict | None = None, extra: Callable[[Path], None] | None = None, *,
                       kind: str = SEPARATOR_KIND, tensors: Mapping[str, torch.Tensor] | None = None,
                       details: dict | None = None) -> Path:
    """Write ``config.json``, ``model.safetensors`` (and ``state.pt``) into ``folder`` atomically, replacing it.

    ``tensors`` defaults to the model's whole state dict (a model with frozen parts shipped elsewhere passes
    only its own); ``details`` adds top-level entries to ``config.json``; ``extra`` may write further files
    (e.g. a converted grounding model) into the staging folder before it moves into place.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    staging = folder.parent / f".{folder.name}.writing-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        state = model.state_dict() if tensors is None else tensors
        save_file({key: value.detach().cpu().contiguous() for key, value in state.items()},
                  str(staging / "model.safetensors"))
        write_json_atomic(staging / "config.json", {
            "kind": kind,
            "class": type(model).__name__,
            "config": asdict(model_config),
            "versions": {"bisep": __version__, "torch": torch.__version__},
            **(details or {}),
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


def read_model_folder(folder: str | Path, kind: str = SEPARATOR_KIND, untagged: bool = False
                      ) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(config.json contents, tensors)`` of a folder of ``kind``; a missing, corrupt or foreign folder is a
    one-line error. ``untagged`` also accepts a config without ``kind`` (grounding folders written before
    every folder carried one)."""
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
    if not isinstance(meta, dict) or meta.get("kind", kind if untagged else None) != kind:
        found = meta.get("kind", "no kind") if isinstance(meta, dict) else "no kind"
        raise BisepError(f"{config_path}: not a {kind} config ({found})")
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError) as error:
        raise BisepError(f"{weights_path}: corrupt weights ({error})") from None
    return meta, tensors
