"""The separator trainer: every mode on one loop, one process or many (DistributedDataParallel).

Modes: ``unsupervised`` (mix-and-separate baseline), ``weak`` (the method), ``supervised`` (single-source
mixtures), ``semi`` (supervised loss on single sources plus the weak losses on natural mixtures). Only rank 0
writes (checkpoints, TensorBoard, history); metrics are averaged over ranks.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict
from functools import partial
from pathlib import Path

import torch

from bisep.errors import ConfigError
from bisep.data.sampling import CompositionMixtures, MixtureOfMixtures, SingleSourceMixtures, collate_mixtures
from bisep.data.streaming import StreamedMixtureOfMixtures, StreamedSingleSourceMixtures
from bisep.files import write_json_atomic, write_text_atomic
from bisep.grounding import load_grounding
from bisep.model_folder import read_model_folder, write_model_folder
from bisep.separator.model import TextQueriedSeparator
from bisep.train.training_state import read_training_state, restore_rng_states, rng_states
from bisep.train.config import TrainConfig
from bisep.train.distributed import GlobalBatchSampler, setup_distributed
from bisep.train.objectives import supervised_terms, total_loss, validation_scores, weak_terms


def inference_queries(batch: dict) -> list[str]:
    """The prompts of a training batch in the form ``bisep separate`` and the evaluation lists use them: one
    phrase per sound. Single-source batches carry them as ``prompts``; natural batches as each clip's drawn
    ``phrases`` (duplicates dropped), never its multi-sound caption. Every mixture gets the same number of
    prompts (the separator batches them per mixture), so a mixture with fewer distinct phrases repeats its
    last one."""
    if "prompts" in batch:
        return [prompt for item in batch["prompts"] for prompt in item]
    per_mixture = [list(dict.fromkeys(p for clip in phrases for p in clip)) for phrases in batch["phrases"]]
    width = max(len(queries) for queries in per_mixture)
    return [query for queries in per_mixture for query in queries + queries[-1:] * (width - len(queries))]


class Trainer:
    """One training run of a separator, from a :class:`~bisep.train.config.TrainConfig`.

    Builds the separator, its frozen grounding model and the data of the run's mode, then alternates optimiser
    steps with validation on fixed compositions. Writes under ``config.out``: model folders
    ``checkpoints/latest`` (with ``state.pt``, from which ``resume=True`` continues), ``checkpoints/best``
    (best validation SDR) and ``checkpoints/epochNNNN``, ``history.jsonl`` and TensorBoard logs. Under
    ``torchrun`` each process holds one rank; only rank 0 writes.
    """

    def __init__(self, config: TrainConfig, resume: bool = False, device: str | None = None, log=print):
        self.config, self.resume, self.log = config, resume, log
        self.dist = setup_distributed(device)
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.out = Path(config.out)
        self.grounding = load_grounding(config.grounding, self.dist.device).pad_text_to_context(
            config.model.attend_padding)
        self._check_dimensions()
        self.text_signature = self.grounding.text_signature()
        self.model = TextQueriedSeparator(config.model).to(self.dist.device)
        self.wrapped = self.model
        if self.dist.enabled:
            self.wrapped = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.dist.device.index] if self.dist.device.type == "cuda" else None)
        optim = config.optim
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=optim.learning_rate,
                                          weight_decay=optim.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, optim.decay_every_epochs, optim.decay_factor)
        self.autocast_dtype = None
        if config.mixed_precision and self.dist.device.type == "cuda":
            self.autocast_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16)
        self._build_data()
        self.grounding.precompute(self._all_prompts())
        self.epoch, self.step_in_epoch, self.global_step, self.best_sdr = 0, 0, 0, -math.inf
        if resume:
            self._restore()
        self.writer = None
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out / "tensorboard"))

    def _check_dimensions(self) -> None:
        model = self.config.model
        problems = []
        if model.embedding_dim != self.grounding.embedding_dim:
            problems.append(f"model.embedding_dim={model.embedding_dim} but the grounding model gives "
                            f"{self.grounding.embedding_dim}")
        if model.token_dim != self.grounding.token_dim:
            problems.append(f"model.token_dim={model.token_dim} but the grounding model gives "
                            f"{self.grounding.token_dim}")
        if problems:
            raise ConfigError("; ".join(problems))

    def _build_data(self) -> None:
        config, data = self.config, self.config.data
        if not data.corpus:
            raise ConfigError("data.corpus is not set (give data.corpus=PATH)")
        segment = round(data.segment_seconds * config.model.sample_rate) if data.segment_seconds else None
        common = dict(segment_samples=segment, sample_rate=config.model.sample_rate, seed=config.seed,
                      max_failure_share=data.max_failure_share)
        natural, single = partial(MixtureOfMixtures, data.corpus), partial(SingleSourceMixtures, data.corpus)
        if data.shards:
            streaming = dict(shuffle_buffer=data.shuffle_buffer, rank=self.dist.rank,
                             world_size=self.dist.world_size)
            natural = partial(StreamedMixtureOfMixtures, data.shards, **streaming)
            single = partial(StreamedSingleSourceMixtures, data.shards, **streaming)
        self.datasets = {}
        if config.mode in ("unsupervised", "weak", "semi"):
            self.datasets["natural"] = natural(data.train_split, data.clips_per_mixture, data.phrases_per_clip,
                                               length=data.items_per_epoch, **common)
        if config.mode in ("supervised", "semi"):
            self.datasets["single"] = single(data.supervised_split, data.sources_per_supervised_mixture,
                                             length=data.items_per_epoch, **common)
        self.validation = CompositionMixtures(data.corpus, data.validation_compositions, segment_samples=segment,
                                              sample_rate=config.model.sample_rate)
        optim = config.optim
        self.samplers = {name: GlobalBatchSampler(len(dataset), optim.batch_size, optim.accumulation,
                                                  self.dist.world_size, self.dist.rank, config.seed + index)
                         for index, (name, dataset) in enumerate(self.datasets.items())}
        self.steps_per_epoch = min(sampler.steps_per_epoch for sampler in self.samplers.values())

    def _all_prompts(self) -> list[str]:
        """Every caption and phrase the training and validation data can ask for."""
        from bisep.data.format import Dataset

        dataset = Dataset.open(self.config.data.corpus)
        splits = {self.config.data.train_split, self.config.data.supervised_split}
        ids = [clip_id for split in splits if (dataset.root / "splits" / f"{split}.csv").is_file()
               for clip_id in dataset.split(split)]
        ids += [clip_id for _, members in dataset.compositions(self.config.data.validation_compositions)
                for clip_id in members]
        return [text for clip_id in ids for text in [dataset.clips[clip_id]["caption"],
                                                     *dataset.clips[clip_id]["phrases"]]]

    def _loaders(self) -> dict[str, torch.utils.data.DataLoader]:
        loaders = {}
        for name, dataset in self.datasets.items():
            dataset.set_epoch(self.epoch)
            if isinstance(dataset, torch.utils.data.IterableDataset):
                loaders[name] = dataset.loader(self.config.optim.batch_size, self.config.data.workers,
                                               skip_batches=self.step_in_epoch * self.config.optim.accumulation)
                continue
            self.samplers[name].set_epoch(self.epoch, self.step_in_epoch)
            loaders[name] = torch.utils.data.DataLoader(
                dataset, batch_sampler=self.samplers[name], collate_fn=collate_mixtures,
                num_workers=self.config.data.workers)
        return loaders

    def _micro_batch_terms(self, batches: dict[str, dict]) -> dict[str, torch.Tensor]:
        terms: dict[str, torch.Tensor] = {}
        context = (torch.autocast(self.dist.device.type, dtype=self.autocast_dtype)
                   if self.autocast_dtype else nullcontext())
        with context:
            if "natural" in batches:
                terms.update(weak_terms(self.wrapped, self.grounding, batches["natural"], self.config.loss,
                                        "unsupervised" if self.config.mode == "unsupervised" else "weak"))
            if "single" in batches:
                terms.update(supervised_terms(self.wrapped, self.grounding, batches["single"]))
        return terms

    def train_step(self, micro_batches: list[dict[str, dict]]) -> dict[str, float]:
        """One optimiser step over ``accumulation`` micro-batches; returns the step's loss terms."""
        self.wrapped.train()
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        for index, batches in enumerate(micro_batches):
            last = index == len(micro_batches) - 1
            sync = nullcontext() if (last or not self.dist.enabled) else self.wrapped.no_sync()
            with sync:
                terms = self._micro_batch_terms(batches)
                loss = total_loss(terms, self.config.loss) / len(micro_batches)
                self.scaler.scale(loss).backward()
            for key, value in terms.items():
                totals[key] = totals.get(key, 0.0) + float(value.detach()) / len(micro_batches)
            totals["loss"] = totals.get("loss", 0.0) + float(loss.detach())
            for name, batch in batches.items():
                self.datasets[name].record_skipped(batch.get("skipped", []))
        if not all(math.isfinite(value) for value in totals.values()):
            raise FloatingPointError(f"non-finite loss at step {self.global_step}: {totals}")
        self.scaler.unscale_(self.optimizer)
        if self.config.optim.gradient_clip:
            totals["gradient_norm"] = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(),
                                                                           self.config.optim.gradient_clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return self.dist.mean(totals)

    @torch.no_grad()
    def recalibrate_batch_norm(self, batches: int = 8) -> None:
        """Recompute BatchNorm running statistics as an exact average over ``batches`` training batches.

        Running averages (momentum 0.1) lag behind weights that move fast early in training, so validation
        with them would judge a short run by stale statistics (what that cost: docs/models.md). The batches are
        fixed items of the current epoch, so the result is deterministic; training itself (batch statistics) is
        unaffected. With two training streams (semi) each gives half the batches. The mixtures are queried as
        inference queries them, by the phrase of each sound (:func:`inference_queries`), in every mode.
        """
        norms = [m for m in self.model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        momenta = [norm.momentum for norm in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None
        self.model.train()
        size, share = self.config.optim.batch_size, max(1, batches // len(self.datasets))
        for dataset in self.datasets.values():
            # every training stream in equal shares (semi: natural and single-source mixtures), as the running
            # averages of training would hold them
            count = min(share, len(dataset) // size)
            if isinstance(dataset, torch.utils.data.IterableDataset):
                fixed = dataset.first_batches(size, count)
            else:
                fixed = (collate_mixtures([dataset[i] for i in range(index * size, (index + 1) * size)])
                         for index in range(count))
            for batch in fixed:
                prompts = inference_queries(batch)
                text = self.grounding.encode_text(prompts).to(self.dist.device)
                self.model(batch["mixture"].to(self.dist.device), text)
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        self.model.eval()

    def validate(self) -> dict[str, float]:
        """Mean SDR (bss_eval) and SI-SDR of the estimates and of the unprocessed mixture on the validation
        compositions, and their improvements (``sdri``, ``si_sdri``)."""
        self.recalibrate_batch_norm()
        limit = self.config.data.validation_items or len(self.validation)
        indices = list(range(self.dist.rank, min(limit, len(self.validation)), self.dist.world_size))
        names = ("sdr", "mixture_sdr", "si_sdr", "mixture_si_sdr")
        sums = torch.zeros(len(names) + 1, dtype=torch.float64)
        examples = []
        for start in range(0, len(indices), self.config.optim.batch_size):
            batch = collate_mixtures([self.validation[i] for i in indices[start:start + self.config.optim.batch_size]])
            scores = validation_scores(self.model, self.grounding, batch)
            sums += torch.tensor([scores[name].sum().item() for name in names] + [scores["sdr"].numel()],
                                 dtype=torch.float64)
            if not examples:
                examples = batch
        sums = self.dist.sum(sums).cpu()
        count = max(sums[-1].item(), 1)
        result = {name: sums[index].item() / count for index, name in enumerate(names)}
        result["sdri"] = result["sdr"] - result["mixture_sdr"]
        result["si_sdri"] = result["si_sdr"] - result["mixture_si_sdr"]
        if self.writer is not None and examples:
            self._write_audio_examples(examples)
        return result

    @torch.no_grad()
    def _write_audio_examples(self, batch: dict) -> None:
        count = min(self.config.audio_examples, len(batch["prompts"]))
        if not count:
            return
        mixture = batch["mixture"][:count].to(self.dist.device)
        prompts = [p for item in batch["prompts"][:count] for p in item]
        text = self.grounding.encode_text(prompts).to(self.dist.device)
        waveforms = self.model(mixture, text)["waveforms"].cpu()
        rate = self.config.model.sample_rate
        for index in range(count):
            peak = max(batch["mixture"][index].abs().max().item(), 1e-6)
            self.writer.add_audio(f"example{index}/mixture", batch["mixture"][index] / peak, self.epoch, rate)
            for slot, prompt in enumerate(batch["prompts"][index]):
                # scaled like the mixture so levels compare; an estimate louder than the mixture is clipped
                # here rather than by tensorboard (which prints a warning per clip)
                self.writer.add_audio(f"example{index}/{slot}-{prompt[:40]}",
                                      (waveforms[index, slot] / peak).clamp(-1.0, 1.0), self.epoch, rate)

    def _training_state(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step, "best_sdr": self.best_sdr, "rng": rng_states(),
        }

    def save(self, name: str, with_state: bool = True) -> None:
        if not self.dist.is_main:
            return
        provenance = {"mode": self.config.mode, "grounding": self.config.grounding, "epoch": self.epoch,
                      "global_step": self.global_step, "best_validation_sdr": self.best_sdr,
                      "grounding_text_signature": self.text_signature, "training_config": asdict(self.config)}
        write_model_folder(self.out / "checkpoints" / name, self.model, self.config.model, provenance,
                           self._training_state() if with_state else None)

    def _restore(self) -> None:
        folder = self.out / "checkpoints" / "latest"
        _, tensors = read_model_folder(folder)
        self.model.load_state_dict(tensors)
        state = read_training_state(folder)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self._apply_configured_schedule()
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step_in_epoch = int(state["epoch"]), int(state["step_in_epoch"])
        self.global_step, self.best_sdr = int(state["global_step"]), float(state["best_sdr"])
        restore_rng_states(state["rng"])
        self._forget_history_after(self.global_step)
        self.log(f"resumed from {folder} at epoch {self.epoch}, step {self.step_in_epoch}")

    def _apply_configured_schedule(self) -> None:
        """On resume, the config's learning-rate schedule wins over the one saved with the run, so a long run
        continued across sessions can lower its rate (configs/builtin/long-field.yaml does); Adam's moments and
        the epoch count are kept. The rate becomes what the new schedule gives at the current epoch."""
        optim, scheduler = self.config.optim, self.scheduler
        if (scheduler.base_lrs[0], scheduler.step_size, scheduler.gamma) == (
                optim.learning_rate, optim.decay_every_epochs, optim.decay_factor):
            return
        rate = optim.learning_rate * optim.decay_factor ** (scheduler.last_epoch // optim.decay_every_epochs)
        scheduler.base_lrs = [optim.learning_rate] * len(scheduler.base_lrs)
        scheduler.step_size, scheduler.gamma = optim.decay_every_epochs, optim.decay_factor
        for group in self.optimizer.param_groups:
            group["initial_lr"], group["lr"] = optim.learning_rate, rate
        scheduler._last_lr = [rate] * len(scheduler.base_lrs)
        self.log(f"learning-rate schedule from the config ({optim.learning_rate:g}, x{optim.decay_factor:g} every "
                 f"{optim.decay_every_epochs} epochs): {rate:g} from epoch {scheduler.last_epoch}")

    def _forget_history_after(self, step: int) -> None:
        """Drop the history a stopped run wrote after its last checkpoint: the resumed run redoes those steps, and
        the curves would show them twice."""
        path = self.out / "history.jsonl"
        if not self.dist.is_main or not path.is_file():
            return
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
        if len(kept) < len(lines):
            write_text_atomic(path, "".join(line + "\n" for line in kept))

    def _history(self, record: dict) -> None:
        if self.dist.is_main:
            with open(self.out / "history.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def run(self, max_steps: int | None = None) -> dict:
        """Train until ``epochs`` (or ``max_steps`` optimiser steps, for tests and budgets); returns a summary."""
        config = self.config
        started = time.perf_counter()
        if self.global_step == 0:
            self._validate_and_keep_best()
        while self.epoch < config.epochs:
            # a run saved at an epoch's last step and stopped before the epoch's end (its validation) resumes there
            if self.step_in_epoch < self.steps_per_epoch and self._train_epoch(max_steps):
                return self._summary(started)
            with warnings.catch_warnings():  # resumed at an epoch's end: no optimiser step yet in this process
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
                self.scheduler.step()
            self.epoch += 1
            self.step_in_epoch = 0
            if self.epoch % config.validate_every_epochs == 0 or self.epoch == config.epochs:
                self._validate_and_keep_best()
            if self.epoch % config.checkpoint_every_epochs == 0:
                self.save(f"epoch{self.epoch:04d}", with_state=False)
            self.save("latest")
        return self._summary(started)

    def _train_epoch(self, max_steps: int | None) -> bool:
        """The rest of the current epoch's optimiser steps; True when ``max_steps`` stopped it first."""
        from tqdm import tqdm

        config, accumulation = self.config, self.config.optim.accumulation
        iterators = {name: iter(loader) for name, loader in self._loaders().items()}
        bar = tqdm(total=self.steps_per_epoch, initial=self.step_in_epoch, desc=f"epoch {self.epoch}",
                   disable=not self.dist.is_main or not sys.stderr.isatty(), file=sys.stderr, unit="step")
        with bar:
            while self.step_in_epoch < self.steps_per_epoch:
                step_started = time.perf_counter()
                micro = [{name: next(iterator) for name, iterator in iterators.items()} for _ in range(accumulation)]
                terms = self.train_step(micro)
                self.step_in_epoch += 1
                self.global_step += 1
                seconds = time.perf_counter() - step_started
                items = config.optim.batch_size * accumulation * self.dist.world_size
                terms.update({"learning_rate": self.optimizer.param_groups[0]["lr"],
                              "items_per_second": items / seconds, "seconds_per_step": seconds})
                self._log_step(terms)
                bar.set_postfix(loss=f"{terms['loss']:.3f}", items_s=f"{terms['items_per_second']:.1f}")
                bar.update()
                if config.checkpoint_every_steps and self.global_step % config.checkpoint_every_steps == 0:
                    self.save("latest")
                if max_steps is not None and self.global_step >= max_steps:
                    return True
        return False

    def _log_step(self, terms: dict[str, float]) -> None:
        self._history({"step": self.global_step, "epoch": self.epoch, **terms})
        if self.writer is not None:
            for key, value in terms.items():
                self.writer.add_scalar(f"train/{key}", value, self.global_step)

    def _validate_and_keep_best(self) -> None:
        metrics = self.validate()
        self._history({"step": self.global_step, "epoch": self.epoch,
                       **{f"validation_{k}": v for k, v in metrics.items()}})
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(f"validation/{key}", value, self.global_step)
            self.writer.flush()
        self.log(f"epoch {self.epoch}: validation SDR {metrics['sdr']:.2f} dB (mixture {metrics['mixture_sdr']:.2f} "
                 f"dB, improvement {metrics['sdri']:+.2f} dB); SI-SDR improvement {metrics['si_sdri']:+.2f} dB")
        if metrics["sdr"] > self.best_sdr:
            self.best_sdr = metrics["sdr"]
            self.save("best", with_state=False)

    def _summary(self, started: float) -> dict:
        if self.writer is not None:
            self.writer.flush()
        summary = {"epochs": self.epoch, "global_step": self.global_step, "best_validation_sdr": self.best_sdr,
                   "seconds": time.perf_counter() - started}
        if self.dist.is_main:
            write_json_atomic(self.out / "summary.json", summary)
        return summary
