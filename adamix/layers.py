"""The mixture layers: stacked expert projections with random routing, and the adapter / LoRA wrappers."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import DEFAULT_INIT_STD, INFERENCE_MODES


class ExpertLinear(nn.Module):
    """`num_experts` linear projections stored as one stacked tensor, routed by an index.

    `weight` has shape (experts, out, in) and `bias` (experts, out), so one expert is `F.linear(x, w[i], b[i])`
    and merging is `.mean(0)`. A shared projection is simply a stack of one.

    Routing (PAPER.md): in train mode each forward draws one expert uniformly at random and sends the whole
    batch through it; with `route_groups = G > 1` the leading batch dimension is split into G equal groups, each
    through its own independently drawn expert, in one batched matmul (the two views of the consistency term in
    one forward). In eval mode `inference` decides: "merge" uses the averaged weights (recomputed at every
    forward, never cached), "random" draws one expert per example, "random_token" one per token,
    "fixed" always uses `fixed_expert`.
    """

    def __init__(
        self,
        num_experts: int,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(
            torch.empty(num_experts, out_features, in_features, device=device, dtype=dtype)
        )
        self.bias = (
            nn.Parameter(torch.zeros(num_experts, out_features, device=device, dtype=dtype)) if bias else None
        )
        self.inference = "merge"
        self.fixed_expert = 0
        self.route_groups = 1
        # None: draws come from torch's global RNG (shared with dropout). `adamix.shared_routing` sets one
        # dedicated generator on every mixture of a model, so that several processes can draw alike.
        self.routing_generator: torch.Generator | None = None

    @property
    def num_experts(self) -> int:
        return self.weight.shape[0]

    def extra_repr(self) -> str:
        return (
            f"experts={self.num_experts}, in={self.in_features}, out={self.out_features}, "
            f"bias={self.bias is not None}, inference={self.inference}"
        )

    @torch.no_grad()
    def init_identical(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        """Give every expert the same initial weights (the reference deep-copies one module M times)."""
        self.weight.copy_(weight.expand_as(self.weight))
        if self.bias is not None:
            self.bias.copy_(
                (bias if bias is not None else torch.zeros_like(self.bias[0])).expand_as(self.bias)
            )

    @torch.no_grad()
    def init_independent(self, std: float) -> None:
        """Give every expert its own N(0, std) weights and zero biases (the official NLU code's init_weights)."""
        self.weight.normal_(0.0, std)
        if self.bias is not None:
            self.bias.zero_()

    @torch.no_grad()
    def collapse(self) -> None:
        """Replace the experts by their uniform average, in place: afterwards this is one plain projection."""
        if self.num_experts == 1:
            return
        self.weight = nn.Parameter(self.weight.mean(0, keepdim=True), requires_grad=self.weight.requires_grad)
        if self.bias is not None:
            self.bias = nn.Parameter(self.bias.mean(0, keepdim=True), requires_grad=self.bias.requires_grad)

    def _single(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(weight, bias) of a stack of one. `squeeze` rather than `[0]`: its backward is a view, where indexing
        would allocate a zero gradient for the stack and copy into it (two extra kernels per projection)."""
        return self.weight.squeeze(0), None if self.bias is None else self.bias.squeeze(0)

    def merged_weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Uniformly averaged (weight, bias), computed from the current parameters at every call.

        Nothing is cached: a cache keyed on `Parameter._version` went stale under the fused AdamW kernel (it
        updates in place without bumping the version), so evaluation during training read old experts. The
        average is M * in * out additions, small beside the matmul it feeds; deployment collapses the experts
        once (`merge_and_unload`) and pays nothing at all.
        """
        if self.num_experts == 1:
            return self._single()
        return self.weight.mean(0), None if self.bias is None else self.bias.mean(0)

    def _draw(self, count: int, device: torch.device) -> torch.Tensor:
        """`count` expert indices drawn uniformly, as a device tensor (no host sync, compile-friendly)."""
        if self.routing_generator is None:
            return torch.randint(self.num_experts, (count,), device=device)
        return torch.randint(self.num_experts, (count,), device=device, generator=self.routing_generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.num_experts == 1:
            return F.linear(x, *self._single())
        if self.training:
            return self._routed(x, self.route_groups)
        if self.inference == "merge":
            weight, bias = self.merged_weights()
            return F.linear(x, weight, bias)
        if self.inference == "fixed":
            index = min(self.fixed_expert, self.num_experts - 1)
            return F.linear(x, self.weight[index], None if self.bias is None else self.bias[index])
        if self.inference == "random":
            return self._routed(x, x.shape[0] if x.dim() > 1 else 1)
        if self.inference == "random_token":
            return self._per_token(x)
        raise ValueError(f"ExpertLinear.inference must be one of {INFERENCE_MODES}, got {self.inference!r}")

    def _routed(self, x: torch.Tensor, groups: int) -> torch.Tensor:
        """Split the leading dimension into `groups` equal parts, each through one randomly drawn expert."""
        index = self._draw(groups, x.device)
        if groups == 1:
            weight = self.weight.index_select(0, index).squeeze(0)
            bias = None if self.bias is None else self.bias.index_select(0, index).squeeze(0)
            return F.linear(x, weight, bias)
        if x.shape[0] % groups:
            raise ValueError(f"batch of {x.shape[0]} cannot be split into {groups} routing groups")
        grouped = x.reshape(groups, -1, self.in_features)
        weight_t = self.weight.index_select(0, index).transpose(1, 2)
        if self.bias is None:
            out = torch.bmm(grouped, weight_t)
        else:
            out = torch.baddbmm(self.bias.index_select(0, index).unsqueeze(1), grouped, weight_t)
        return out.reshape(*x.shape[:-1], self.out_features)

    def _per_token(self, x: torch.Tensor) -> torch.Tensor:
        """Every token through its own random expert: all experts once, then a gather (an eval-only ablation)."""
        flat = x.reshape(-1, self.in_features)
        every = torch.einsum("ni,eoi->neo", flat, self.weight)
        if self.bias is not None:
            every = every + self.bias
        index = self._draw(flat.shape[0], x.device)
        out = every[torch.arange(flat.shape[0], device=x.device), index]
        return out.reshape(*x.shape[:-1], self.out_features)


def _base_features(base: nn.Module) -> tuple[int, int]:
    """(in, out) features of an nn.Linear or a transformers Conv1D (GPT-2 stores its weight as (in, out))."""
    if isinstance(base, nn.Linear):
        return base.in_features, base.out_features
    if type(base).__name__ == "Conv1D" and hasattr(base, "nf"):
        return base.weight.shape[0], base.weight.shape[1]
    raise TypeError(f"AdaMix can wrap nn.Linear or transformers Conv1D modules, not {type(base).__name__}")


def _expert_counts(num_experts: int, share: str) -> tuple[int, int]:
    """Experts in the (down, up) projections: the shared one is a stack of one."""
    return (1 if share == "down" else num_experts), (1 if share == "up" else num_experts)


class AdaMixLayer(nn.Module):
    """Base of the wrappers: holds the frozen `base_layer` and the mixture's expert projections."""

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.in_features, self.out_features = _base_features(base_layer)

    def expert_projections(self) -> list[ExpertLinear]:
        return [m for m in self.children() if isinstance(m, ExpertLinear)]


class AdaMixAdapterLayer(AdaMixLayer):
    """A bottleneck adapter mixture applied to the output of `base_layer`: h + up(GELU(down(h))).

    Wrapping the FFN output dense puts the adapter after `output.dense`, before dropout and LayerNorm, as in
    the reference NLU code.
    """

    def __init__(
        self,
        base_layer: nn.Module,
        num_experts: int,
        bottleneck: int,
        share: str,
        dropout: float,
        expert_init: str = "identical",
        init_std: float = DEFAULT_INIT_STD,
    ):
        super().__init__(base_layer)
        d = self.out_features
        ref = base_layer.weight
        n_down, n_up = _expert_counts(num_experts, share)
        self.adamix_down = ExpertLinear(n_down, d, bottleneck, device=ref.device, dtype=ref.dtype)
        self.adamix_up = ExpertLinear(n_up, bottleneck, d, device=ref.device, dtype=ref.dtype)
        self.adamix_act = nn.GELU()
        self.adamix_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        if expert_init == "independent":
            # Each expert its own draw, up included: the experts differ from step 0 and all receive gradient.
            self.adamix_down.init_independent(init_std)
            self.adamix_up.init_independent(init_std)
        else:
            init = nn.Linear(d, bottleneck, device=ref.device, dtype=ref.dtype)  # torch's default Linear init
            self.adamix_down.init_identical(init.weight, init.bias)
            # Zero up-projection: the adapter starts as the identity, the pretrained network unchanged at step 0.
            self.adamix_up.init_identical(torch.zeros(d, bottleneck, device=ref.device, dtype=ref.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.base_layer(x)
        return h + self.adamix_up(self.adamix_act(self.adamix_down(self.adamix_dropout(h))))


class AdaMixLoRALayer(AdaMixLayer):
    """A LoRA mixture beside `base_layer`: base(x) + (alpha / r) * B(A(dropout(x))); A is down, B is up."""

    def __init__(
        self,
        base_layer: nn.Module,
        num_experts: int,
        rank: int,
        alpha: float,
        share: str,
        dropout: float,
        expert_init: str = "identical",
    ):
        super().__init__(base_layer)
        ref = base_layer.weight
        n_a, n_b = _expert_counts(num_experts, share)
        self.scaling = alpha / rank
        self.adamix_A = ExpertLinear(
            n_a, self.in_features, rank, bias=False, device=ref.device, dtype=ref.dtype
        )
        self.adamix_B = ExpertLinear(
            n_b, rank, self.out_features, bias=False, device=ref.device, dtype=ref.dtype
        )
        self.adamix_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        if expert_init == "independent":  # each A expert its own kaiming draw
            for expert in self.adamix_A.weight.data:
                nn.init.kaiming_uniform_(expert, a=math.sqrt(5))
        else:
            a = torch.empty(rank, self.in_features, device=ref.device, dtype=ref.dtype)
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))  # as LoRA / PEFT; B = 0 so the update starts at zero
            self.adamix_A.init_identical(a)
        self.adamix_B.init_identical(torch.zeros(self.out_features, rank, device=ref.device, dtype=ref.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        update = self.adamix_B(self.adamix_A(self.adamix_dropout(x)))
        return out + self.scaling * update.to(out.dtype)

    def delta_weight(self) -> torch.Tensor:
        """The merged update in the base layer's weight layout: (out, in) for Linear, (in, out) for Conv1D."""
        a, _ = self.adamix_A.merged_weights()
        b, _ = self.adamix_B.merged_weights()
        delta = self.scaling * (b @ a)
        return delta if isinstance(self.base_layer, nn.Linear) else delta.T
