"""Prompt-based fine-tuning on a causal LM: the label word is the next token after the rendered prompt.

A causal LM reads a prompt as a masked LM does, once the template ends where the label word would come
(``"{text_a} It was {mask}"``, `flows.data.prompts.BUILTIN_CAUSAL_PROMPTS`): :class:`CausalPromptClassifier`'s
class logits are the LM head's next-token logits for the label words at the last non-pad position of each row.
The output has ``.logits`` of shape (batch, classes), so the training loop, AdaMix's two views and consistency term
(the KL compares these class logits) and the metrics work unchanged.

What trains: the LM head (the vocabulary projection) is frozen for every method. AdaMix, the adapter and LoRA
train their adaptation modules only; full fine-tuning trains every transformer layer and norm, but not the LM head
nor, where they are tied to it (GPT-2, SmolLM2), the input embeddings: one tensor, frozen, so the tie can never
break and the label words keep their pretrained output rows (LM-BFF's full fine-tuning also trains the head; a
32-example training set is too small to move a 49k-row vocabulary matrix usefully).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.prompts import Prompt, check_causal_template
from .prompting import PromptOutput, TemplateEncoder


class CausalPromptEncoder(TemplateEncoder):
    """Renders each example as the template up to its mask: the label word is the next token.

    The rendered prompt ends without trailing whitespace, since the label word's token carries the space before
    it (``Ġgreat`` for BPE tokenizers; `flows.modeling.prompting.label_word_ids`). Only ``input_ids`` and
    ``attention_mask`` are returned (a GPT-2 tokenizer's token type ids would be added to its embeddings).

    Args:
        tokenizer: the causal LM's tokenizer; a missing pad token becomes the EOS token (the attention mask, not
            the pad id, says where each row ends).
        prompt: the task's template (ending with ``{mask}``) and label words.

    Raises:
        PromptError: text after the mask, or a label word that is not one token of this tokenizer.
    """

    def __init__(self, tokenizer, prompt: Prompt) -> None:
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        super().__init__(tokenizer, prompt, check_causal_template(prompt.template))

    def render(self, texts: dict[str, str]) -> str:
        """The template filled with the given sentence texts, cut at the mask (trailing spaces removed)."""
        out = []
        for part in self.parts:
            out.append(part.literal)
            if part.field == "mask":
                break
            if part.field is not None:
                out.append(texts[part.field])
        return "".join(out).rstrip()

    def __call__(self, chunk: list[dict], max_length: int) -> tuple[dict, torch.Tensor]:
        """Tokenised prompts (dynamic padding, the tokenizer's padding side) and class labels of one batch."""
        inputs, labels = super().__call__(chunk, max_length)
        return {k: inputs[k] for k in ("input_ids", "attention_mask")}, labels


def last_token_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last non-pad token of each row, whichever side the padding is on.

    Args:
        attention_mask: (batch, tokens), 1 on tokens and 0 on padding.

    Returns:
        (batch,) long tensor: the largest index whose mask is 1 (0 for an all-padding row).
    """
    index = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask.long() * index).argmax(1)


class CausalPromptClassifier(nn.Module):
    """A causal LM read as a classifier: logits = next-token logits of the label words after the prompt.

    The LM head is frozen here (and the input embeddings with it when tied): see the module docstring.

    Args:
        lm: a transformers ``...ForCausalLM`` model.
        label_word_ids: one vocabulary id per class, in class order.
    """

    def __init__(self, lm: nn.Module, label_word_ids: list[int]) -> None:
        super().__init__()
        self.lm = lm
        self.register_buffer(
            "label_word_ids", torch.tensor(label_word_ids, dtype=torch.long), persistent=False
        )
        for p in lm.get_output_embeddings().parameters():
            p.requires_grad_(False)
        # Gemma-2-like models cap the logits after the head, inside the full forward: take that path for them.
        self._head_only = getattr(lm.config, "final_logit_softcapping", None) is None

    @property
    def config(self):
        """The causal LM's config (AdaMix and PEFT read `model_type` from it)."""
        return self.lm.config

    def get_input_embeddings(self) -> nn.Module:
        return self.lm.get_input_embeddings()

    def get_output_embeddings(self) -> nn.Module:
        return self.lm.get_output_embeddings()

    def save_pretrained(self, path: str | Path, **kwargs: Any) -> None:
        """Save the causal LM (full fine-tuning): the prompt loader wraps it again."""
        self.lm.save_pretrained(path, **kwargs)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> PromptOutput:
        """Class logits (batch, classes) at each row's last non-pad token; cross-entropy when `labels` are given.

        Position ids are counted from the attention mask, so a left-padded row sees the positions it would see
        unpadded (transformers numbers positions from the left edge unless told).
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        last = last_token_positions(attention_mask)
        position_ids = (attention_mask.long().cumsum(1) - 1).clamp(min=0)
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        kwargs = {"attention_mask": attention_mask, "position_ids": position_ids, "use_cache": False}
        if self._head_only:  # the body, then the head at one position per row: no (tokens x vocab) logits
            hidden = self.lm.base_model(input_ids=input_ids, **kwargs)[0]
            vocab_logits = self.lm.get_output_embeddings()(hidden[rows, last])
        else:
            vocab_logits = self.lm(input_ids=input_ids, **kwargs).logits[rows, last]
        logits = vocab_logits[:, self.label_word_ids]
        loss = nn.functional.cross_entropy(logits.float(), labels) if labels is not None else None
        return PromptOutput(logits, loss)
