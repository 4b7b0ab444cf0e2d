"""bisep: text-queried sound separation learned from natural mixtures and captions.

    from bisep import Separator
    result = Separator.from_pretrained("builtin").separate("song.wav", ["a violin", "drums"])

The public names are imported on first use, so ``import bisep`` (and ``bisep --help``) stays quick.
"""

from bisep.version import __version__
__all__ = ["Separation", "Separator", "load_grounding", "__version__"]


def __getattr__(name: str):
    if name in ("Separator", "Separation"):
        from bisep.separator import api

        return getattr(api, name)
    if name == "load_grounding":
        from bisep.grounding import load_grounding

        return load_grounding
    raise AttributeError(f"module 'bisep' has no attribute '{name}'")
