"""Length-aware batching: grouped training batches stay a random partition; sorted prediction keeps input order."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch
import transformers

from flows.modeling.batching import length_grouped_batches
from flows.modeling.inference import predict


def _lengths(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(5, 200) for _ in range(n)]


@pytest.mark.parametrize("n", [1, 31, 32, 33, 1000])
@pytest.mark.parametrize("group", [0, 1, 4, 8])
def test_every_example_once_in_ceil_n_over_b_batches(n: int, group: int) -> None:
    batches = length_grouped_batches(_lengths(n), 32, group, torch.Generator().manual_seed(0))
    assert len(batches) == math.ceil(n / 32)
    assert sorted(i for b in batches for i in b) == list(range(n))
    assert all(1 <= len(b) <= 32 for b in batches)
    assert sum(len(b) < 32 for b in batches) <= 1  # at most one short batch


def test_grouping_cuts_padding_and_stays_random() -> None:
    lengths = _lengths(1024)

    def padded(batches: list[list[int]]) -> int:
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    plain = length_grouped_batches(lengths, 32, 1, torch.Generator().manual_seed(0))
    grouped = length_grouped_batches(lengths, 32, 8, torch.Generator().manual_seed(0))
    assert padded(grouped) < 0.8 * padded(plain)
    again = length_grouped_batches(lengths, 32, 8, torch.Generator().manual_seed(0))
    other = length_grouped_batches(lengths, 32, 8, torch.Generator().manual_seed(1))
    assert grouped == again and grouped != other  # a function of the seed, different across seeds
    # batches are not simply sorted by length across the epoch: the batch order is shuffled
    means = [sum(lengths[i] for i in b) / len(b) for b in grouped]
    assert means != sorted(means) and means != sorted(means, reverse=True)


def test_plain_batches_are_the_seeded_permutation() -> None:
    batches = length_grouped_batches(_lengths(100), 32, 0, torch.Generator().manual_seed(3))
    expected = torch.randperm(100, generator=torch.Generator().manual_seed(3)).tolist()
    assert [i for b in batches for i in b] == expected


def test_predict_returns_predictions_in_input_order(tiny_model_dir: Path) -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_model_dir)
    # One output (regression): predictions are distinct floats, so any reordering would show.
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=1, ignore_mismatched_sizes=True
    )
    torch.manual_seed(0)
    torch.nn.init.normal_(model.classifier.weight, std=10.0)  # spread the outputs
    words = ["good", "bad", "film", "plot", "great", "dull"]
    rng = random.Random(0)
    examples = [
        {"text_a": " ".join(rng.choice(words) for _ in range(rng.randint(1, 30))), "label": 0}
        for _ in range(50)
    ]
    params = {"train": {"precision": "fp32", "max_length": 64, "eval_batch_size": 8}}
    batched = predict(model, examples, tokenizer, params, torch.device("cpu"))
    with torch.no_grad():
        one_by_one = [model(**tokenizer(e["text_a"], return_tensors="pt")).logits.item() for e in examples]
    assert batched == pytest.approx(one_by_one, abs=1e-5)
    assert len({round(v, 4) for v in one_by_one}) > 25
