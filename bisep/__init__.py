"""bisep: text-queried sound separation learned from natural mixtures and captions."""

__version__ = "0.1.0"
