"""AdaMixTrainer: a `transformers.Trainer` whose loss is AdaMix's two-view objective and whose saves are artifacts.

Imported lazily by `adamix` (`adamix.AdaMixTrainer`), so `import adamix` never pulls in the Trainer or accelerate.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import Trainer

from .config import CONFIG_NAME, WEIGHTS_NAME
from .consistency import adamix_loss, default_task_loss
from .serialization import load_adamix, save_adamix

TRAINING_ARGS_NAME = "training_args.bin"  # the Trainer's own name for its pickled arguments
# Keys added to the Trainer's training logs (beside its `loss`), averaged over the steps since the last log.
TASK_LOSS_KEY = "task_loss"
CONSISTENCY_KEY = "consistency_loss"


class AdaMixTrainer(Trainer):
    """A Trainer that optimises AdaMix's objective: task loss on one stochastic view plus the weighted consistency
    term between two views (different routes and dropout masks), via `adamix.adamix_loss`.

    Training logs carry `task_loss` and `consistency_loss` beside the Trainer's `loss`, so they reach whatever
    `report_to` names. Evaluation runs the model in eval mode, where every mixture routes as its configured
    inference mode (`model.adamix_config.inference`, changed with `adamix.set_inference_mode`); the eval loss is
    the task loss of that single forward. Saving (`save_model`, checkpoints) writes the AdaMix artifact
    (adapters and head, safetensors, loadable with `adamix.load_adamix`) instead of the full model, and
    `resume_from_checkpoint` / `load_best_model_at_end` read it back.

    Args:
        *args: the `transformers.Trainer` arguments (model, args, train_dataset, ...).
        consistency_weight: weight of the consistency term (1.0 for NLU in the paper); 0 = one view only.
        batched_views: run the two views as one doubled batch (True) or two forwards (False).
        task_loss: callable (logits, labels) -> scalar; None = cross-entropy (MSE for one regression output).
        save_artifact: write the AdaMix artifact when the Trainer saves (False: the Trainer's own save).
        **kwargs: further `transformers.Trainer` keyword arguments.

    Example:
        >>> trainer = AdaMixTrainer(model=model, args=args, train_dataset=train, consistency_weight=1.0)  # doctest: +SKIP
        >>> trainer.train()  # doctest: +SKIP
        >>> trainer.save_model("runs/sst2")  # doctest: +SKIP
        >>> adamix.load_adamix(fresh_base, "runs/sst2")  # doctest: +SKIP
    """

    def __init__(
        self,
        *args: Any,
        consistency_weight: float = 1.0,
        batched_views: bool = True,
        task_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        save_artifact: bool = True,
        **kwargs: Any,
    ) -> None:
        if not consistency_weight >= 0:
            raise ValueError(f"consistency_weight must be a number >= 0, got {consistency_weight!r}")
        super().__init__(*args, **kwargs)
        if getattr(self.accelerator.unwrap_model(self.model), "adamix_config", None) is None:
            raise ValueError(
                "AdaMixTrainer needs an AdaMix model: call adamix.get_adamix_model(model, config)"
            )
        self.consistency_weight = float(consistency_weight)
        self.batched_views = batched_views
        self.task_loss = task_loss or default_task_loss
        self.save_artifact = save_artifact
        # Our loss is a per-batch mean that never sees `num_items_in_batch`: the Trainer must divide it by the
        # gradient accumulation steps itself (both attributes exist in recent transformers; older ones read the
        # first only).
        self.model_accepts_loss_kwargs = False
        self.loss_is_scaled_for_ga = False
        self._parts_sum: torch.Tensor | None = None  # (task, consistency) summed since the last training log
        self._parts_count = 0

    # -- the objective ------------------------------------------------------------------------------------------
    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """Training: AdaMix's two-view objective. Evaluation: the task loss of one forward in inference mode."""
        inputs = dict(inputs)
        labels = inputs.pop("labels", None)
        if labels is None:
            raise ValueError("AdaMixTrainer needs `labels` in every batch for its task loss")
        if not model.training:
            outputs = model(**inputs)
            loss = self.task_loss(outputs.logits, labels)
            return (loss, outputs) if return_outputs else loss
        out = adamix_loss(
            model,
            inputs,
            labels,
            consistency_weight=self.consistency_weight,
            task_loss=self.task_loss,
            batched=self.batched_views,
        )
        parts = torch.stack([out.task_loss.detach().float(), out.consistency.detach().float()])
        self._parts_sum = parts if self._parts_sum is None else self._parts_sum + parts
        self._parts_count += 1
        return (out.loss, {"loss": out.loss, "logits": out.logits}) if return_outputs else out.loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """The Trainer's log, with the task loss and the consistency term added to every training log."""
        if "loss" in logs and self._parts_count:
            # All-gather like the Trainer's own loss: the mean over processes of each one's mean since last log.
            means = self.accelerator.gather((self._parts_sum / self._parts_count)[None]).mean(0).tolist()
            logs = {**logs, TASK_LOSS_KEY: means[0], CONSISTENCY_KEY: means[1]}
            self._parts_sum, self._parts_count = None, 0
        super().log(logs, *args, **kwargs)

    def train(self, *args: Any, **kwargs: Any) -> Any:
        self._parts_sum, self._parts_count = None, 0  # nothing left over from an earlier run
        return super().train(*args, **kwargs)

    # -- saving and loading -------------------------------------------------------------------------------------
    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Write the AdaMix artifact (safetensors) into `output_dir`, beside the tokenizer and training args."""
        if not self.save_artifact:
            super()._save(output_dir, state_dict=state_dict)
            return
        if not self.args.should_save:
            return
        output = Path(output_dir if output_dir is not None else self.args.output_dir)
        output.mkdir(parents=True, exist_ok=True)
        model = self.accelerator.unwrap_model(self.model)
        # The folder may hold checkpoints or other files, so it is not replaced: the artifact is written
        # complete in a staging folder inside it, then its two files are renamed into place (weights first).
        staging = Path(tempfile.mkdtemp(prefix=".adamix-", dir=output))
        try:
            save_adamix(model, staging / "artifact")
            for name in (WEIGHTS_NAME, CONFIG_NAME):
                os.replace(staging / "artifact" / name, output / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        tokenizer = self.processing_class or getattr(self.data_collator, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.save_pretrained(output)
        torch.save(self.args, output / TRAINING_ARGS_NAME)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        if self.save_artifact and _is_artifact(resume_from_checkpoint):
            load_adamix(
                self.accelerator.unwrap_model(model if model is not None else self.model),
                resume_from_checkpoint,
            )
            return
        super()._load_from_checkpoint(resume_from_checkpoint, model=model)

    def _load_best_model(self) -> None:
        best = self.state.best_model_checkpoint
        if self.save_artifact and best is not None and _is_artifact(best):
            load_adamix(self.accelerator.unwrap_model(self.model), best)
            return
        super()._load_best_model()


def _is_artifact(folder: str | os.PathLike) -> bool:
    return (Path(folder) / CONFIG_NAME).is_file() and (Path(folder) / WEIGHTS_NAME).is_file()
