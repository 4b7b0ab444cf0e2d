"""Evaluation runs: every composition of a list is mixed, separated by each method and scored.

Methods are estimators. The separator is queried with each clip's prompt, all prompts of a composition in one
batched call (the network shares its prompt-independent work). Reference points need no model: the unprocessed
mixture (always scored, SDRi is measured against it) and the ideal ratio and binary masks (with the separator's
STFT). The main process loads audio, runs the estimators and the CLAPScore; the costly bss_eval runs in ``jobs``
worker processes while the next compositions are separated.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from bisep.errors import BisepError
from bisep.evaluate.clap_score import similarity_matrix
from bisep.evaluate.compositions import Composition, CompositionList, LoadedComposition
from bisep.evaluate.metrics import score_composition_single_threaded, worker_initializer
from bisep.evaluate.oracles import ORACLES, IdealMasks
from bisep.grounding.base import GroundingModel, check_prompts

Estimator = Callable[[Composition, LoadedComposition, int], dict[str, np.ndarray]]
"""``(composition, loaded audio, sample rate) -> {method: estimates (k, samples)}``."""

MIXTURE, REFERENCE = "mixture", "reference"


def default_jobs() -> int:
    return min(2, os.cpu_count() or 1)


class SeparatorEstimator:
    """The separator's estimate for each clip's prompt, from one batched call per composition."""

    def __init__(self, separator, method: str = "model"):
        self.separator, self.method = separator, method
        self.grounding = separator.grounding
        """Encodes the prompts: the evaluation fills its text cache with every prompt of the list up front."""

    def __call__(self, composition: Composition, loaded: LoadedComposition, sample_rate: int) -> dict[str, np.ndarray]:
        prompts = check_prompts(list(composition.prompts))
        result = self.separator.separate(loaded.mixture, list(dict.fromkeys(prompts)), sample_rate=sample_rate)
        return {self.method: np.stack([result.sources[prompt][0] for prompt in prompts])}


class OracleEstimator:
    """The ideal ratio and binary masks with the given STFT (use the separator's)."""

    def __init__(self, n_fft: int, hop_length: int):
        self.masks = IdealMasks(n_fft, hop_length)

    def __call__(self, composition: Composition, loaded: LoadedComposition, sample_rate: int) -> dict[str, np.ndarray]:
        return self.masks(loaded.references)


def evaluate_separator(separator, compositions: CompositionList | str | Path, out_dir: str | Path, *,
                       grounding: GroundingModel | str | None = None, oracles: bool = True, jobs: int | None = None,
                       limit: int | None = None, examples: int = 2, progress: bool | None = None,
                       checkpoint: str | None = None) -> dict:
    """Score ``separator`` (a :class:`bisep.separator.api.Separator`) on a composition list, write the report
    into ``out_dir`` and return the summary (see :func:`evaluate`). ``grounding`` (a model or a spec such as
    ``builtin``) scores the CLAPScore, by default the separator's own; ``oracles`` adds the ideal masks (with the
    separator's STFT) and the clean references' CLAPScore."""
    if grounding is None:
        grounding = separator.grounding
    elif not isinstance(grounding, GroundingModel):
        from bisep.grounding import load_grounding

        grounding = load_grounding(grounding, separator.device)
    config = separator.model.config
    estimators = [SeparatorEstimator(separator)]
    if oracles:
        estimators.append(OracleEstimator(config.n_fft, config.hop_length))
    description = {"separator": {"name": separator.name, "checkpoint": checkpoint or separator.name,
                                 "n_fft": config.n_fft, "hop_length": config.hop_length,
                                 "sample_rate": config.sample_rate, "mask": config.mask,
                                 "grounding": separator.grounding.name}}
    return evaluate(compositions, estimators, out_dir, grounding=grounding, clap_references=oracles, jobs=jobs,
                    limit=limit, examples=examples, progress=progress, description=description)


def evaluate_oracles(compositions: CompositionList | str | Path, out_dir: str | Path, *, n_fft: int,
                     hop_length: int, grounding: GroundingModel | str | None = "builtin", jobs: int | None = None,
                     limit: int | None = None, examples: int = 2, progress: bool | None = None) -> dict:
    """Score the reference points alone (mixture, ideal ratio and binary masks with this STFT; CLAPScore of the
    mixture and the clean references when ``grounding`` is given): once per composition list and STFT."""
    if isinstance(grounding, (str, Path)):
        from bisep.grounding import load_grounding

        grounding = load_grounding(grounding)
    return evaluate(compositions, [OracleEstimator(n_fft, hop_length)], out_dir, grounding=grounding,
                    clap_references=grounding is not None, jobs=jobs, limit=limit, examples=examples,
                    progress=progress, description={"oracle_stft": {"n_fft": n_fft, "hop_length": hop_length}})


def evaluate(compositions: CompositionList | str | Path, estimators: list[Estimator], out_dir: str | Path, *,
             grounding: GroundingModel | None, clap_references: bool = False, jobs: int | None = None,
             limit: int | None = None, examples: int = 2, progress: bool | None = None,
             description: dict | None = None) -> dict:
    """Run ``estimators`` on the compositions, score them, write the report (``results.json``, ``scores.csv``,
    ``summary.md``, plots, best and worst examples, ``timing.json``) and return ``{"counts", "summary",
    "methods", "timing", "files"}``; ``summary[method]["overall"][metric]`` holds mean, median, ci95, count."""
    from tqdm import tqdm

    from bisep.evaluate.report import build_results, write_report

    if not isinstance(compositions, CompositionList):
        compositions = CompositionList.open(compositions)
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 0:
        raise BisepError(f"jobs must be 0 (no worker processes) or more, got {jobs}")
    if limit is not None and limit < 1:
        raise BisepError(f"limit must be 1 or more, got {limit}")
    items = compositions.compositions[:limit] if limit else compositions.compositions
    rate = compositions.sample_rate
    started = time.perf_counter()
    # Every prompt of the whole list is encoded once, in batches (so ``limit`` does not change the features).
    prompts = [prompt for composition in compositions.compositions for prompt in composition.prompts]
    for model in {id(g): g for g in (grounding, *(getattr(e, "grounding", None) for e in estimators)) if g}.values():
        model.precompute(prompts)
    records: list[dict] = []
    bar = tqdm(items, desc=f"evaluating {compositions.name}", unit="mixture", file=sys.stderr,
               disable=not (sys.stderr.isatty() if progress is None else progress))
    with _MetricPool(jobs) as pool, _inference_threads(jobs):
        for composition in bar:
            loaded = compositions.load(composition)
            record = {"id": composition.id, "clips": list(composition.clips), "prompts": list(composition.prompts),
                      "classes": list(composition.classes)}
            records.append(record)
            if loaded.silent_clips:
                record["skipped"] = f"silent reference: {', '.join(loaded.silent_clips)}"
                continue
            estimates = run_estimators(estimators, composition, loaded, rate)
            if grounding is not None:
                record["clap_score"] = _clap_scores(grounding, estimates, loaded, composition, rate, clap_references)
            pool.submit(record, loaded.references, estimates, loaded.mixture)
    seconds = time.perf_counter() - started
    results = build_results(compositions, records, description or {}, grounding)
    timing = {"seconds": seconds, "compositions": len(items), "compositions_per_second": len(items) / seconds,
              "jobs": jobs, "cpu_count": os.cpu_count()}
    files = write_report(out_dir, results, timing, compositions, estimators, examples)
    return {"counts": results["counts"], "summary": results["summary"], "methods": results["methods"],
            "timing": timing, "files": files}


def run_estimators(estimators: list[Estimator], composition: Composition, loaded: LoadedComposition,
                   sample_rate: int) -> dict[str, np.ndarray]:
    estimates: dict[str, np.ndarray] = {}
    for estimator in estimators:
        estimates.update(estimator(composition, loaded, sample_rate))
    return estimates


def _clap_scores(grounding: GroundingModel, estimates: dict[str, np.ndarray], loaded: LoadedComposition,
                 composition: Composition, rate: int, with_references: bool) -> dict[str, list[float]]:
    """CLAPScore of the separator's estimates, of the mixture and (reference points) of the clean references.

    The oracles' estimates are not embedded: they would double the grounding model's work for little insight.
    """
    sources = len(composition.clips)
    scored = {method: values for method, values in estimates.items() if method not in ORACLES}
    scored[MIXTURE] = loaded.mixture[None]
    if with_references:
        scored[REFERENCE] = loaded.references
    similarity = similarity_matrix(grounding, np.concatenate(list(scored.values())), rate, composition.prompts)
    result, row = {}, 0
    for method, waveforms in scored.items():
        block = similarity[row:row + len(waveforms)]
        result[method] = (np.repeat(block, sources, 0) if len(waveforms) == 1 else block).diagonal().tolist()
        row += len(waveforms)
    return result


class _MetricPool:
    """bss_eval in ``jobs`` worker processes (0: in this process), with a bounded queue of pending compositions
    so memory stays flat; each result is merged into its record.

    On Linux the workers are forked: they start at once and never re-run the caller's script (spawned workers
    import ``__main__`` again, which breaks scripts without an ``if __name__ == "__main__"`` guard). Forking a
    process that has run torch is safe here because the workers only run numpy and scipy.
    """

    def __init__(self, jobs: int):
        context = get_context("fork" if sys.platform.startswith("linux") else "spawn")
        self.executor = ProcessPoolExecutor(jobs, mp_context=context, initializer=worker_initializer) if jobs else None
        self.limit = 2 * jobs + 2
        self.pending: deque[tuple[dict, Future]] = deque()

    def submit(self, record: dict, references: np.ndarray, estimates: dict[str, np.ndarray],
               mixture: np.ndarray) -> None:
        if self.executor is None:
            _merge(record, score_composition_single_threaded(references, estimates, mixture))
            return
        with warnings.catch_warnings():
            # Python >= 3.12 warns on any fork of a process with threads (torch's); the workers never use them.
            warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
            future = self.executor.submit(score_composition_single_threaded, references, estimates, mixture)
        self.pending.append((record, future))
        while len(self.pending) > self.limit:
            self._collect()

    def _collect(self) -> None:
        record, future = self.pending.popleft()
        _merge(record, future.result())

    def __enter__(self) -> "_MetricPool":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if error is None:
                while self.pending:
                    self._collect()
        finally:
            if self.executor is not None:
                self.executor.shutdown(wait=error is None, cancel_futures=True)


def _merge(record: dict, scores: dict) -> None:
    record["silent_estimates"] = scores.pop("silent_estimates")
    clap = record.pop("clap_score", {})
    record["scores"] = scores
    for method, values in clap.items():
        record["scores"].setdefault(method, {})["clap_score"] = values


@contextlib.contextmanager
def _inference_threads(jobs: int) -> Iterator[None]:
    """Leave the cores the metric workers use to them: the network runs on the others (at least one)."""
    threads = torch.get_num_threads()
    if jobs:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - jobs))
    try:
        yield
    finally:
        torch.set_num_threads(threads)
