"""Tiny transformers built from configs (a few thousand parameters), shared by the library tests."""

from __future__ import annotations

import torch
import transformers as T

VOCAB = 64
_COMMON = dict(vocab_size=VOCAB, pad_token_id=0)
_ENCODER = dict(
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=40,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)

CONFIGS = {
    "bert": lambda: T.BertConfig(**_COMMON, **_ENCODER),
    "roberta": lambda: T.RobertaConfig(**{**_COMMON, "pad_token_id": 1}, **_ENCODER),
    "mpnet": lambda: T.MPNetConfig(**{**_COMMON, "pad_token_id": 1}, **_ENCODER),
    "distilbert": lambda: T.DistilBertConfig(
        **_COMMON, dim=16, n_layers=2, n_heads=2, hidden_dim=32, dropout=0.0, attention_dropout=0.0
    ),
    "gpt2": lambda: T.GPT2Config(
        **_COMMON,
        n_embd=16,
        n_layer=2,
        n_head=2,
        n_positions=40,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=1,
        eos_token_id=2,
    ),
    "llama": lambda: T.LlamaConfig(
        **_COMMON,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=32,
        max_position_embeddings=40,
        bos_token_id=1,
        eos_token_id=2,
    ),
}


def tiny_classifier(arch: str, num_labels: int = 3, seed: int = 0) -> torch.nn.Module:
    """A sequence classifier of architecture `arch`; the same seed gives the same weights."""
    torch.manual_seed(seed)
    config = CONFIGS[arch]()
    config.num_labels = num_labels
    return T.AutoModelForSequenceClassification.from_config(config).eval()


def tiny_causal_lm(arch: str = "gpt2", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return T.AutoModelForCausalLM.from_config(CONFIGS[arch]()).eval()


def batch(arch: str = "bert", size: int = 3, length: int = 7, seed: int = 1) -> dict[str, torch.Tensor]:
    """Random token ids with some right padding (the last example is shorter)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (size, length), generator=g)
    mask = torch.ones(size, length, dtype=torch.long)
    mask[-1, length - 2 :] = 0
    ids[-1, length - 2 :] = 1 if arch in ("roberta", "mpnet") else 0
    return {"input_ids": ids, "attention_mask": mask}
