"""What a training checkpoint adds to its model folder (:mod:`bisep.model_folder`) to resume: ``state.pt``
(optimiser, scheduler, epoch, step, RNG states), plain tensors and numbers saved with ``torch.save`` and read
back with ``weights_only=True``.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from bisep.errors import BisepError


TRAINING_STATE_KEYS = ("optimizer", "scheduler", "scaler", "epoch", "step_in_epoch", "global_step", "best_sdr",
                       "rng")


def read_training_state(folder: str | Path) -> dict:
    path = Path(folder) / "state.pt"
    if not path.is_file():
        raise BisepError(f"{folder}: no training state to resume from (state.pt missing)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise BisepError(f"{path}: unreadable training state ({type(error).__name__})") from None
    missing = [key for key in TRAINING_STATE_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise BisepError(f"{path}: not a bisep training state (missing {', '.join(missing)})")
    return state


def rng_states() -> dict:
    return {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
            "python_version": random.getstate()[0], "python_gauss": random.getstate()[2]}


def restore_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate((states["python_version"], tuple(states["python"]), states["python_gauss"]))
