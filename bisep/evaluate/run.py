"""Evaluation runs: every composition of a list is mixed, separated by each method and scored.

Methods are estimators. The separator is queried with each clip's prompt, all prompts of a composition in one
batched call (the network shares its prompt-independent work). Reference points need no model: the unprocessed
mixture (always scored, SDRi is measured against it) and the ideal ratio and binary masks (with the separator's
STFT).

Parallel work: on the CPU, ``jobs`` worker processes each evaluate whole compositions (load, separate, CLAPScore,
bss_eval) on one thread, so a small network and the metrics together fill every core and the report is the same
whatever ``jobs`` is. With a GPU, the main process separates and the workers compute only the metrics (a forked
process cannot use CUDA).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from bisep.errors import BisepError
from bisep.evaluate.clap_score import REFERENCE, similarity_matrix
from bisep.evaluate.compositions import Composition, CompositionList, LoadedComposition
from bisep.evaluate.estimators import Estimator, OracleEstimator, SeparatorEstimator, run_estimators
from bisep.evaluate.metrics import MIXTURE
from bisep.evaluate.oracles import ORACLES
from bisep.evaluate.report import build_results, write_report
from bisep.evaluate.workers import score_single_threaded, worker_initializer
from bisep.grounding.base import GroundingModel

def default_jobs() -> int:
    return min(2, os.cpu_count() or 1)


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

    if not isinstance(compositions, CompositionList):
        compositions = CompositionList.open(compositions)
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 0:
        raise BisepError(f"jobs must be 0 (no worker processes) or more, got {jobs}")
    if limit is not None and limit < 1:
        raise BisepError(f"limit must be 1 or more, got {limit}")
    count = min(limit or len(compositions.compositions), len(compositions.compositions))
    started, cpu_started, load_before = time.perf_counter(), _cpu_seconds(), _load_average()
    evaluator = CompositionEvaluator(compositions, estimators, grounding, clap_references)
    evaluator.encode_prompts()
    with _progress_bar(count, compositions.name, progress) as bar:
        if jobs == 0:
            records = [_advance(bar, evaluator.evaluate(index)) for index in range(count)]
        elif evaluator.uses_cuda():
            records = _metrics_in_workers(evaluator, count, jobs, bar)
        else:
            records = _compositions_in_workers(evaluator, count, jobs, bar)
    seconds = time.perf_counter() - started
    timing = {"seconds": seconds, "cpu_seconds": _cpu_seconds() - cpu_started, "compositions": count,
              "compositions_per_second": count / seconds, "jobs": jobs, "cpu_count": os.cpu_count(),
              "load_average_before": load_before, "load_average_after": _load_average()}
    results = build_results(compositions, records, description or {}, grounding)
    files = write_report(out_dir, results, timing, compositions, estimators, examples)
    return {"counts": results["counts"], "summary": results["summary"], "methods": results["methods"],
            "timing": timing, "files": files}


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished worker processes (user + system)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return time.process_time()
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _load_average() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


class CompositionEvaluator:
    """Everything one composition needs: load it, run the estimators, the CLAPScore and the metrics."""

    def __init__(self, compositions: CompositionList, estimators: list[Estimator], grounding: GroundingModel | None,
                 clap_references: bool):
        self.compositions, self.estimators = compositions, estimators
        self.grounding, self.clap_references = grounding, clap_references

    def encode_prompts(self) -> None:
        """Encode every prompt of the whole list once, in batches (before workers fork, so they share the cache;
        the whole list, so that ``limit`` does not change the features)."""
        prompts = [prompt for composition in self.compositions.compositions for prompt in composition.prompts]
        encoders = [self.grounding, *(getattr(e, "grounding", None) for e in self.estimators)]
        for model in {id(g): g for g in encoders if g is not None}.values():
            model.precompute(prompts)

    def uses_cuda(self) -> bool:
        devices = [getattr(e, "device", None) for e in self.estimators]
        if self.grounding is not None:
            devices += [parameter.device for parameter in self.grounding.parameters()][:1]
        return any(device is not None and torch.device(device).type == "cuda" for device in devices)

    def prepare(self, index: int) -> tuple[dict, tuple | None]:
        """The composition's record (with its CLAPScores) and the metric inputs; None for a skipped one."""
        composition = self.compositions.compositions[index]
        loaded = self.compositions.load(composition)
        record = {"id": composition.id, "clips": list(composition.clips), "prompts": list(composition.prompts),
                  "classes": list(composition.classes)}
        if loaded.silent_clips:
            record["skipped"] = f"silent reference: {', '.join(loaded.silent_clips)}"
            return record, None
        rate = self.compositions.sample_rate
        estimates = run_estimators(self.estimators, composition, loaded, rate)
        if self.grounding is not None:
            record["clap_score"] = _clap_scores(self.grounding, estimates, loaded, composition, rate,
                                                self.clap_references)
        return record, (loaded.references, estimates, loaded.mixture)

    def evaluate(self, index: int) -> dict:
        record, inputs = self.prepare(index)
        if inputs is not None:
            _merge(record, score_single_threaded(*inputs))
        return record


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


def _merge(record: dict, scores: dict) -> None:
    record["silent_estimates"] = scores.pop("silent_estimates")
    clap = record.pop("clap_score", {})
    record["scores"] = scores
    for method, values in clap.items():
        record["scores"].setdefault(method, {})["clap_score"] = values


# Worker processes ---------------------------------------------------------------------------------------------

_WORKER_EVALUATOR: CompositionEvaluator | None = None


def _start_composition_worker(evaluator: CompositionEvaluator) -> None:
    global _WORKER_EVALUATOR
    worker_initializer()
    torch.set_num_threads(1)
    _WORKER_EVALUATOR = evaluator


def _evaluate_in_worker(index: int) -> dict:
    return _WORKER_EVALUATOR.evaluate(index)


def _executor(jobs: int, initializer, initargs=()) -> ProcessPoolExecutor:
    """Forked workers on Linux: they start at once, share the loaded models and never re-run the caller's
    script (spawned workers import ``__main__`` again, which breaks scripts without a main guard)."""
    context = get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with warnings.catch_warnings():
        # Python >= 3.12 warns on any fork of a process with threads; the workers run torch single-threaded.
        warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
        executor = ProcessPoolExecutor(jobs, mp_context=context, initializer=initializer, initargs=initargs)
        executor.submit(int)  # forking executors start all their workers on the first task: start them here
    return executor


def _compositions_in_workers(evaluator: CompositionEvaluator, count: int, jobs: int, bar) -> list[dict]:
    executor = _executor(jobs, _start_composition_worker, (evaluator,))
    try:
        return [_advance(bar, record) for record in executor.map(_evaluate_in_worker, range(count), chunksize=2)]
    finally:
        executor.shutdown(cancel_futures=True)


def _metrics_in_workers(evaluator: CompositionEvaluator, count: int, jobs: int, bar) -> list[dict]:
    """Separate in this process (on the GPU), score in the workers; at most ``2 jobs + 2`` compositions wait,
    so memory stays flat."""
    executor = _executor(jobs, worker_initializer)
    records, pending = [], deque()
    try:
        for index in range(count):
            record, inputs = evaluator.prepare(index)
            records.append(record)
            if inputs is None:
                _advance(bar, record)
                continue
            pending.append((record, executor.submit(score_single_threaded, *inputs)))
            while len(pending) > 2 * jobs + 2:
                _collect(pending, bar)
        while pending:
            _collect(pending, bar)
        return records
    finally:
        executor.shutdown(cancel_futures=True)


def _collect(pending: deque, bar) -> None:
    record, future = pending.popleft()
    _merge(record, future.result())
    _advance(bar, record)


@contextlib.contextmanager
def _progress_bar(count: int, name: str, progress: bool | None) -> Iterator:
    from tqdm import tqdm

    bar = tqdm(total=count, desc=f"evaluating {name}", unit="mixture", file=sys.stderr,
               disable=not (sys.stderr.isatty() if progress is None else progress))
    try:
        yield bar
    finally:
        bar.close()


def _advance(bar, record: dict) -> dict:
    bar.update()
    return record
