"""The one way a separator is named: a shipped model, a model folder, or a ``bisep train`` run.

``Separator.from_pretrained`` resolves every name through :func:`resolve_separator`, so ``bisep separate
--model``, ``bisep serve --model`` and ``bisep evaluate --checkpoint`` accept the same things.

``bisep train`` writes ``OUT/checkpoints/{best,latest,epochNNNN}/`` model folders: a run folder (or its
``checkpoints`` folder) means its ``best`` checkpoint (the best validation score), else ``latest``, else the
newest ``epochNNNN``. A file inside a model folder (``config.json``, ``model.safetensors``) means that folder.
"""

from __future__ import annotations

from pathlib import Path

from bisep.errors import BisepError

CHECKPOINT_PREFERENCE = ("best", "latest")


def _is_model_folder(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def resolve_separator(spec: str | Path) -> str:
    """A model folder path, or a model name (``builtin``, ``unittest``) that ``from_pretrained`` looks up in
    :mod:`bisep.pretrained`."""
    text = str(spec)
    path = Path(text).expanduser()
    if not path.exists():
        if "/" in text or text.startswith(".") or Path(text).suffix:
            raise BisepError(f"{text}: no such model folder, training run or checkpoint")
        return text
    if path.is_file():
        if _is_model_folder(path.parent):
            return str(path.parent)
        raise BisepError(f"{text}: a file, not a model folder (config.json + model.safetensors) or training run")
    if _is_model_folder(path):
        return str(path)
    folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    for name in CHECKPOINT_PREFERENCE:
        if _is_model_folder(folder / name):
            return str(folder / name)
    epochs = sorted(p for p in folder.glob("epoch*") if _is_model_folder(p))
    if epochs:
        return str(epochs[-1])
    raise BisepError(f"{text}: neither a model folder (config.json + model.safetensors) nor a training run "
                     f"with checkpoints/best or checkpoints/latest")

