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


SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0-4; [PAD] = 0 = BERT's pad_token_id


def _word_level(tokens: list[str], unk: str):
    """(vocab, backend) of a lower-casing, whitespace-splitting word-level tokenizer over `tokens` (ids in order)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    if len(vocab) > VOCAB:
        raise ValueError(f"{len(vocab)} tokens do not fit the tiny models' vocabulary of {VOCAB}")
    backend = Tokenizer(models.WordLevel(vocab, unk_token=unk))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return vocab, backend


def tiny_tokenizer(words: list[str]):
    """A BERT-style word-level tokenizer over `words` (lower-cased, split on whitespace), built in milliseconds."""
    from tokenizers import processors

    vocab, backend = _word_level([*SPECIAL_TOKENS, *words], "[UNK]")
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return T.PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def save_tiny_pretrained(path, words: list[str], arch: str = "bert", num_labels: int = 2, seed: int = 0):
    """Save a tiny classifier and its tokenizer with save_pretrained, as a local `model.name_or_path` folder."""
    tiny_classifier(arch, num_labels=num_labels, seed=seed).save_pretrained(path)
    tiny_tokenizer(words).save_pretrained(path)
    return path


LM_SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")  # ids 0-3: the tiny GPT-2 / Llama pad, bos and eos


def tiny_lm_tokenizer(words: list[str]):
    """A word-level tokenizer for the tiny causal LMs (pad 0, bos 1, eos 2), no special tokens added around text."""
    from tokenizers import decoders

    _, backend = _word_level([*LM_SPECIAL_TOKENS, *words], "<unk>")
    backend.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return T.PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def save_tiny_lm(path, words: list[str], arch: str = "llama", seed: int = 0):
    """Save a tiny causal LM and its tokenizer, as a local `model.name_or_path` folder."""
    tiny_causal_lm(arch, seed=seed).save_pretrained(path)
    tiny_lm_tokenizer(words).save_pretrained(path)
    return path
