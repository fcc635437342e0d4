"""AdaMixTrainer: AdaMix's objective inside transformers.Trainer, its logs, its evaluation mode, its artifact."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
import transformers as T
from tiny_models import CONFIGS, VOCAB
from transformers import TrainingArguments

import adamix
from adamix import CONFIG_NAME, WEIGHTS_NAME, AdaMixConfig

LENGTH = 6


class _Separable(torch.utils.data.Dataset):
    """Label 0: every token from the lower half of the vocabulary; label 1: from the upper half."""

    def __init__(self, size: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(size) % 2
        half = VOCAB // 2
        low = torch.randint(3, half, (size, LENGTH), generator=g)
        self.ids = torch.where(self.labels[:, None] == 1, low + half - 3, low)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.ids[i],
            "attention_mask": torch.ones(LENGTH, dtype=torch.long),
            "labels": self.labels[i],
        }


def _base() -> torch.nn.Module:
    """The tiny BERT classifier with a wider init than BERT's 0.02, so a random backbone's logits are not all ~0
    and a dozen steps visibly train; the same weights on every call."""
    torch.manual_seed(0)
    config = CONFIGS["bert"]()
    config.num_labels, config.initializer_range = 2, 0.2
    return T.BertForSequenceClassification(config).eval()


def _model():
    config = AdaMixConfig(method="adapter", num_experts=4, bottleneck=4, expert_init="independent")
    return adamix.get_adamix_model(_base(), config)


def _trainer(tmp_path, model=None, consistency_weight=1.0, **args):
    defaults = dict(
        output_dir=str(tmp_path / "out"),
        report_to="none",
        use_cpu=True,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        max_steps=16,
        learning_rate=5e-2,
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    return adamix.AdaMixTrainer(
        model=model if model is not None else _model(),
        args=TrainingArguments(**{**defaults, **args}),
        train_dataset=_Separable(32, seed=0),
        eval_dataset=_Separable(16, seed=1),
        consistency_weight=consistency_weight,
    )


def _train_logs(trainer):
    return [entry for entry in trainer.state.log_history if "loss" in entry]


def test_trains_and_logs_both_parts(tmp_path):
    trainer = _trainer(tmp_path, consistency_weight=0.5)
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    assert after < 0.9 * before  # eval in merge mode is deterministic: 0.82 -> 0.68 here
    logs = _train_logs(trainer)
    assert len(logs) == 16 and all({"task_loss", "consistency_loss"} <= entry.keys() for entry in logs)
    assert all(entry["consistency_loss"] >= 0 for entry in logs)
    assert max(entry["consistency_loss"] for entry in logs) > 1e-3  # the experts differ: the two views do too
    for entry in logs:  # the Trainer's loss is exactly the objective built from the two parts
        assert entry["loss"] == pytest.approx(entry["task_loss"] + 0.5 * entry["consistency_loss"], rel=1e-4)
    assert sum(e["task_loss"] for e in logs[-4:]) < 0.9 * sum(e["task_loss"] for e in logs[:4])


def test_gradient_accumulation_scales_the_loss_once(tmp_path):
    trainer = _trainer(tmp_path, per_device_train_batch_size=4, gradient_accumulation_steps=2, max_steps=3)
    trainer.train()
    for entry in _train_logs(trainer):  # the mean over the micro-batches, not their sum
        assert entry["loss"] == pytest.approx(entry["task_loss"] + entry["consistency_loss"], rel=1e-4)


def _eval_loss_by_hand(model, dataset) -> float:
    items = [dataset[i] for i in range(len(dataset))]
    inputs = {k: torch.stack([item[k] for item in items]) for k in ("input_ids", "attention_mask")}
    model.eval()
    with torch.no_grad():
        return F.cross_entropy(model(**inputs).logits, torch.stack([item["labels"] for item in items])).item()


def test_evaluation_runs_in_the_configured_inference_mode(tmp_path):
    trainer = _trainer(tmp_path, max_steps=3)
    trainer.train()
    model = trainer.model
    merged = trainer.evaluate()["eval_loss"]
    assert merged == pytest.approx(_eval_loss_by_hand(model, trainer.eval_dataset), rel=1e-5)
    adamix.set_inference_mode(model, "fixed", fixed_expert=2)
    fixed = trainer.evaluate()["eval_loss"]
    assert fixed == pytest.approx(_eval_loss_by_hand(model, trainer.eval_dataset), rel=1e-5)
    assert fixed != pytest.approx(merged, rel=1e-4)


def test_save_model_round_trips_through_load_adamix(tmp_path):
    trainer = _trainer(tmp_path, max_steps=3)
    trainer.train()
    out = tmp_path / "saved"
    trainer.save_model(str(out))
    files = {p.name for p in out.iterdir()}
    assert {CONFIG_NAME, WEIGHTS_NAME} <= files and "model.safetensors" not in files
    assert not [name for name in files if name.startswith(".")]  # no staging folder left
    loaded = adamix.load_adamix(_base(), out).eval()
    items = [trainer.eval_dataset[i] for i in range(4)]
    inputs = {k: torch.stack([item[k] for item in items]) for k in ("input_ids", "attention_mask")}
    trainer.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, trainer.model(**inputs).logits)


def test_checkpoints_hold_the_artifact_best_model_and_resume(tmp_path):
    args = dict(
        max_steps=4,
        eval_strategy="steps",
        save_strategy="steps",
        eval_steps=2,
        save_steps=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
    )
    trainer = _trainer(tmp_path, **args)
    trainer.train()
    best = trainer.state.best_model_checkpoint
    files = {p.name for p in (tmp_path / "out" / "checkpoint-2").iterdir()}
    assert {CONFIG_NAME, WEIGHTS_NAME} <= files and "model.safetensors" not in files
    from_best = adamix.load_adamix(_base(), best)
    assert trainer.evaluate()["eval_loss"] == pytest.approx(
        _eval_loss_by_hand(from_best, trainer.eval_dataset), rel=1e-5
    )
    resumed = _trainer(tmp_path, **args)
    resumed.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-2"))
    assert resumed.state.global_step == 4


def test_refuses_a_plain_model_and_a_negative_weight(tmp_path):
    with pytest.raises(ValueError, match="get_adamix_model"):
        _trainer(tmp_path, model=_base())
    with pytest.raises(ValueError, match="consistency_weight"):
        _trainer(tmp_path, consistency_weight=-1.0)


def test_import_adamix_does_not_load_the_trainer():
    code = "import adamix, sys; print('transformers.trainer' in sys.modules, 'accelerate' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["False", "False"]
