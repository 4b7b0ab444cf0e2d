"""Evaluation of text-queried separators on test compositions (``docs/evaluation.md``).

    from bisep.evaluate import evaluate_separator, evaluate_oracles
    summary = evaluate_separator(Separator.from_pretrained(folder), "corpus/small/compositions/test_2.csv", "out")
    summary["summary"]["model"]["overall"]["sdri"]["mean"]

Modules: ``compositions`` (what is mixed and queried), ``metrics`` (bss_eval and SI-SDR), ``oracles`` (ideal
masks), ``clap_score``, ``statistics``, ``run`` (the loop and worker processes), ``report``, ``plots``,
``examples``, ``workers`` (worker process setup); ``grounding`` scores grounding models (``bisep grounding
evaluate``). What ``--checkpoint`` may name is :mod:`bisep.separator.resolve`'s business. Nothing heavy is
imported here.
"""

from __future__ import annotations

__all__ = ["evaluate_separator", "evaluate_oracles", "evaluate"]


def __getattr__(name: str):
    if name in ("evaluate_separator", "evaluate_oracles", "evaluate"):
        from bisep.evaluate import run

        return getattr(run, name)
    raise AttributeError(f"module 'bisep.evaluate' has no attribute '{name}'")
