"""Reading foreign PyTorch checkpoints without running pickled code.

``torch.load(weights_only=True)`` rebuilds only tensors, containers and plain numbers. NumPy scalars and dtypes
(which training scripts often store beside the weights, e.g. a best score from a metrics library) are allowed
too: they are data, and torch's documentation lists them as safe to allow. Anything else is refused, and the
error names what the file holds.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from bisep.errors import BisepError

DDP_PREFIX = "module."


def _numpy_globals() -> list:
    """NumPy scalar reconstruction and dtype classes, under their NumPy 2 and NumPy 1 module names."""
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    allowed: list = [scalar, (scalar, "numpy.core.multiarray.scalar"), np.dtype]
    allowed += [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")]
    return allowed


def load_checkpoint(path: str | Path, what: str) -> Any:
    """``torch.load`` a file with ``weights_only=True`` on the CPU; every failure is a one-line BisepError
    (``what`` names the file's role in the message, e.g. "authors' checkpoint")."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BisepError(f"{what} {path}: no such file")
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        message = " ".join(str(error).split())
        found = re.search(r"GLOBAL ([\w.]+)", message)
        if found:
            raise BisepError(
                f"{what} {path}: refused: it holds a pickled {found.group(1)} object, not only tensors (bisep "
                "reads checkpoints with torch.load(weights_only=True) and never runs pickled code)") from None
        raise BisepError(f"{what} {path}: not a readable PyTorch checkpoint (truncated or corrupt: {message[:200]})"
                         ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        raise BisepError(f"{what} {path}: not a readable PyTorch checkpoint (truncated or corrupt: {message[:200]})"
                         ) from None


def state_dict_of(checkpoint: Any, path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint (its ``state_dict`` entry, or the checkpoint itself when it is one), with the
    DistributedDataParallel prefix ``module.`` removed."""
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping) or not state:
        raise BisepError(f"{what} {path}: holds no state_dict of tensors")
    tensors = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise BisepError(f"{what} {path}: state_dict entry {key!r} is a {type(value).__name__}, not a tensor")
        tensors[key[len(DDP_PREFIX):] if key.startswith(DDP_PREFIX) else key] = value
    return tensors


def check_shapes(tensors: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], source: Path,
                 what: str, name_in_source=lambda key: key) -> None:
    """Exactly the expected keys, each with the expected shape, or a one-line error naming the first problems."""
    missing = [key for key in expected if key not in tensors]
    unexpected = [key for key in tensors if key not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(name_in_source(k) for k in missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(name_in_source(k) for k in unexpected[:3])})")
        raise BisepError(f"{what} {source}: keys do not fit: {'; '.join(parts)}")
    for key, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise BisepError(f"{what} {source}: {name_in_source(key)} has shape {tuple(tensor.shape)}, expected "
                             f"{tuple(expected[key].shape)}")
