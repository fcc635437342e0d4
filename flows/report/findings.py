"""Which of the paper's findings held in these runs, stated in words generated from the numbers.

Each finding (PAPER.md: the headline comparisons and the ablations) is decided per case (a task, and a method
where several apply) by the rule: a difference no larger than the larger of the two standard deviations over
seeds is "within noise"; beyond it the claim "held" or "did not hold". With one seed there is no standard
deviation and the text says so. A finding whose runs are not in the params is "not run", with what it needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .ablations import GridResult, find_grid, mean_step_loss
from .collect import Collected
from .plots import Cell
from .stats import is_adamix

HELD, NOT_HELD, NOISE, NOT_RUN, MIXED = "held", "did not hold", "within noise", "not run", "mixed"
CONVERGES = "Without sharing, training converges slower (higher mean training loss)"


def verdict(margin: float, noise: float) -> str:
    """`margin` is positive when the claim holds: held, did not hold, within noise; not run when undefined."""
    if not math.isfinite(margin):
        return NOT_RUN
    if abs(margin) <= noise:
        return NOISE
    return HELD if margin > 0 else NOT_HELD


def overall(verdicts: Sequence[str]) -> str:
    """The cases' common verdict, "mixed" when they disagree, "not run" when none ran."""
    ran = [v for v in verdicts if v != NOT_RUN]
    if not ran:
        return NOT_RUN
    return ran[0] if len(set(ran)) == 1 else MIXED


@dataclass
class Case:
    """One case of a finding: its verdict, where (task, method) and the numbers that decide it."""

    verdict: str
    where: str
    numbers: str


@dataclass
class Finding:
    """One of the paper's claims, its verdict here, and the cases (or why it was not run)."""

    claim: str
    cases: list[Case] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why it was not run, or a remark on the cases

    @property
    def verdict(self) -> str:
        return overall([c.verdict for c in self.cases])

    def markdown(self) -> str:
        """One bullet: "**claim**: held on rt (81.0 vs 77.0), mnli (...)"; each case's verdict when they differ."""
        notes = f" ({'; '.join(self.notes)})" if self.notes else ""
        if self.verdict == NOT_RUN and not any(c.numbers for c in self.cases):
            return f"- **{self.claim}**: {NOT_RUN}{notes}."
        if all(c.verdict == self.verdict for c in self.cases):
            body = f"{self.verdict} on " + ", ".join(f"{c.where} ({c.numbers})" for c in self.cases)
        else:
            body = f"{self.verdict}: " + "; ".join(
                f"{c.verdict} on {c.where} ({c.numbers})" for c in self.cases
            )
        return f"- **{self.claim}**: {body}{notes}."


def _noise(*cells: Cell) -> tuple[float, bool]:
    """The larger standard deviation of the cells (0 if none has one), and whether any has one."""
    stds = [c.std for c in cells if math.isfinite(c.std)]
    return max(stds, default=0.0), bool(stds)


class _Cases:
    """Builds the cases of one finding, formatting scores with the report's decimals."""

    def __init__(self, decimals: int) -> None:
        self.decimals = decimals
        self.cases: list[Case] = []

    def text(self, cell: Cell) -> str:
        return cell.text(self.decimals)

    def add(self, margin: float, noise: tuple[float, bool], where: str, numbers: str) -> str:
        outcome = verdict(margin, noise[0])
        single = "" if noise[1] or outcome == NOT_RUN else "; one seed, no noise estimate"
        self.cases.append(Case(outcome, where, numbers + single))
        return outcome

    def beats(self, a: Cell, b: Cell, where: str, prefix: str = "") -> str:
        """Case "a scores higher than b"."""
        return self.add(a.mean - b.mean, _noise(a, b), where, f"{prefix}{self.text(a)} vs {self.text(b)}")


def _headline(
    data: Collected, params: Mapping[str, Any], labels: Mapping[str, str], decimals: int
) -> list[Finding]:
    """AdaMix beats a single adapter (AdaMix Adapter), LoRA (AdaMix LoRA, else AdaMix Adapter as in the GLUE
    table) and full fine-tuning (every AdaMix method), on every main task."""
    tasks, methods = params["tasks"], params["methods"]
    adamix = [m for m in ("adamix_adapter", "adamix_lora") if m in methods]
    ours_for = {
        "adapter": [m for m in adamix if m == "adamix_adapter"],
        "lora": ["adamix_lora"] if "adamix_lora" in adamix else adamix[:1],
        "full": adamix,
    }
    out = []
    for baseline, name in (("adapter", "a single adapter"), ("lora", "LoRA"), ("full", "full fine-tuning")):
        finding, ours = Finding(f"AdaMix beats {name}"), ours_for[baseline]
        if baseline not in methods or not ours:
            finding.notes.append(
                f"`methods` lacks {baseline if baseline not in methods else 'an AdaMix method'}"
            )
        cases = _Cases(decimals)
        for m in ours if baseline in methods else []:
            for task in tasks:
                where = task if len(ours) == 1 else f"{task} with {labels.get(m, m)}"
                cases.beats(Cell(*data.score(task, m)), Cell(*data.score(task, baseline)), where)
        finding.cases = cases.cases
        out.append(finding)
    return out


def _merging(data: Collected, params: Mapping[str, Any], labels: Mapping[str, str], decimals: int) -> Finding:
    """Merged experts beat every other inference mode evaluated (random, fixed), per AdaMix method and task."""
    finding, cases = Finding("Merging beats random and fixed routing"), _Cases(decimals)
    for m in (m for m in params["methods"] if is_adamix(m)):
        others = [mode for mode in data.modes(m) if mode != "merge"]
        if "merge" not in data.modes(m) or not others:
            continue
        for task in params["tasks"]:
            merged = Cell(*data.score(task, m, "merge"))
            rivals = [Cell(*data.score(task, m, mode)) for mode in others]
            outcomes = [verdict(merged.mean - r.mean, _noise(merged, r)[0]) for r in rivals]
            worst = min(
                range(len(rivals)), key=lambda i: (outcomes[i] != NOT_HELD, merged.mean - rivals[i].mean)
            )  # a mode that beats merging decides; else the closest one
            numbers = f"{cases.text(merged)} vs {' / '.join(map(cases.text, rivals))}: merge vs {' / '.join(others)}"
            margin = merged.mean - rivals[worst].mean
            cases.add(margin, _noise(merged, rivals[worst]), f"{task} with {labels.get(m, m)}", numbers)
    finding.cases = cases.cases
    if not cases.cases:
        finding.notes.append("needs an AdaMix method evaluated in merge and in random or fixed mode")
    return finding


def _pick(grid: GridResult, test: Callable[[Any], bool]) -> str | None:
    """The label of the grid's default value if `test(value)` holds, else of the first value that passes."""
    values = {v.label: v.value for v in grid.variants}
    if grid.default is not None and test(values[grid.default]):
        return grid.default
    return next((label for label, value in values.items() if test(value)), None)


def _no_grid(claim: str, key: str) -> Finding:
    return Finding(claim, notes=[f"needs a grid of `ablations.grids` varying `{key}` and `ablations.tasks`"])


def _dropping(
    grid: GridResult | None, key: str, off: Any, claim: str, decimals: int
) -> tuple[Finding, str, str]:
    """The default (or first "on") value beats the "off" value on each ablation task; also returns both labels."""
    if grid is None:
        return _no_grid(claim, key), "", ""
    without, with_ = _pick(grid, lambda v: v == off), _pick(grid, lambda v: v != off)
    if without is None or with_ is None:
        return Finding(claim, notes=[f"grid {grid.name} needs the value {off} and another"]), "", ""
    cases, drops = _Cases(decimals), {}
    for task in grid.tasks:
        a, b = grid.cells[task][with_], grid.cells[task][without]
        cases.beats(a, b, task, f"{with_} vs {without}: ")
        drops[task] = a.mean - b.mean
    finding = Finding(claim, cases.cases)
    finite = {t: d for t, d in drops.items() if math.isfinite(d)}
    if len(finite) > 1:
        worst = max(finite, key=finite.get)
        finding.notes.append(f"largest drop without it on {worst}: {finite[worst] * 100:.{decimals}f} points")
    return finding, with_, without


def _converges(grid: GridResult, with_: str, without: str, data: Collected, decimals: int) -> Finding:
    """Without sharing, the mean task loss over training steps (seed-averaged) is higher."""
    finding, cases = Finding(CONVERGES), _Cases(decimals)
    method = {v.label: v.method for v in grid.variants}
    for task in grid.tasks:
        runs = [mean_step_loss(data, task, method[label]) for label in (without, with_)]
        if not all(runs):
            cases.cases.append(Case(NOT_RUN, task, "no per-step loss recorded"))
            continue
        off, on = (Cell(*_mean_std(list(r.values()))) for r in runs)
        numbers = f"mean task loss {_loss(off)} with share={without} vs {_loss(on)} with share={with_}"
        cases.add(off.mean - on.mean, _noise(off, on), task, numbers)
    finding.cases = cases.cases
    return finding


def _mean_std(values: list[float]) -> tuple[float, float]:
    series = pd.Series(values, dtype=float)
    return float(series.mean()), float(series.std(ddof=1)) if len(values) > 1 else math.nan


def _loss(cell: Cell) -> str:
    return f"{cell.mean:.3f}" + (f" ± {cell.std:.3f}" if math.isfinite(cell.std) else "")


def _numeric(grid: GridResult | None) -> list[str] | None:
    """The grid's value labels sorted by value, when all values are numbers."""
    if grid is None or not all(
        isinstance(v.value, int | float) and not isinstance(v.value, bool) for v in grid.variants
    ):
        return None
    return [v.label for v in sorted(grid.variants, key=lambda v: v.value)]


def _diminishing(grid: GridResult | None, key: str, claim: str, decimals: int) -> Finding:
    """From the smallest value to the default the score rises beyond noise, and beyond the default it rises
    less (or falls): held. Falling at the low end, or rising more at the high end: did not hold."""
    labels = _numeric(grid)
    if grid is None or labels is None:
        return _no_grid(claim, key)
    if grid.default not in labels[1:-1]:
        return Finding(claim, notes=[f"grid {grid.name} needs values below and above the default"])
    cases = _Cases(decimals)
    picked = (labels[0], grid.default, labels[-1])
    for task in grid.tasks:
        low, mid, high = (grid.cells[task][label] for label in picked)
        numbers = ", ".join(
            f"{label}: {cases.text(c)}" for label, c in zip(picked, (low, mid, high), strict=True)
        )
        outcome = cases.add(mid.mean - low.mean, _noise(low, mid, high), task, f"{key} {numbers}")
        if outcome == HELD and not high.mean - mid.mean < mid.mean - low.mean:
            cases.cases[-1].verdict = NOT_HELD  # returns grow instead of diminishing
    return Finding(claim, cases.cases)


def _too_many(grid: GridResult | None, decimals: int) -> Finding:
    """The largest number of experts scores below the best smaller number, beyond noise."""
    claim, labels = "Too many experts hurt (the paper: on small tasks)", _numeric(grid)
    if grid is None or labels is None or len(labels) < 2:
        return _no_grid(claim, "adamix.num_experts")
    cases, most = _Cases(decimals), labels[-1]
    for task in grid.tasks:
        smaller = {label: grid.cells[task][label] for label in labels[:-1]}
        best = max(smaller, key=lambda label: (math.isfinite(smaller[label].mean), smaller[label].mean))
        top, last = smaller[best], grid.cells[task][most]
        numbers = f"{most} experts: {cases.text(last)} vs best {best}: {cases.text(top)}"
        cases.add(top.mean - last.mean, _noise(top, last), task, numbers)
    return Finding(claim, cases.cases)


def findings(
    data: Collected,
    grids: list[GridResult],
    ablations: Collected | None,
    params: Mapping[str, Any],
    labels: Mapping[str, str],
) -> list[Finding]:
    """The paper's headline claims and ablation findings, each with its verdict on these runs.

    Args:
        data: the main runs.
        grids: the ablation grids' scores (empty when ablations are off).
        ablations: the ablation runs (for the per-step losses), or None.
        params: validated parameters (`tasks`, `methods`, `report.decimals`).
        labels: method -> display name.
    """
    decimals = params["report"]["decimals"]
    out = _headline(data, params, labels, decimals)
    out.append(_merging(data, params, labels, decimals))
    key = "train.consistency_weight"
    claim = "Consistency regularization helps (dropping it hurts)"
    out.append(_dropping(find_grid(grids, key), key, 0, claim, decimals)[0])
    share = find_grid(grids, "adamix.share")
    claim = "Sharing a projection helps (the paper: most on small data, RTE and MRPC)"
    sharing, with_, without = _dropping(share, "adamix.share", "none", claim, decimals)
    out.append(sharing)
    if share is not None and ablations is not None and with_:
        out.append(_converges(share, with_, without, ablations, decimals))
    else:
        note = "needs the runs of a grid of `ablations.grids` varying `adamix.share` with the value none"
        out.append(Finding(CONVERGES, notes=[note]))
    experts = find_grid(grids, "adamix.num_experts")
    out.append(
        _diminishing(experts, "adamix.num_experts", "More experts help, with diminishing returns", decimals)
    )
    out.append(_too_many(experts, decimals))
    claim = "Larger bottlenecks help, with diminishing returns"
    out.append(_diminishing(find_grid(grids, "adamix.bottleneck"), "adamix.bottleneck", claim, decimals))
    return out


def findings_section(found: list[Finding]) -> str:
    """The "Which findings held here" section of results.md."""
    intro = (
        "Generated from the numbers of this report. A difference no larger than the larger standard deviation "
        "over seeds is *within noise*; *mixed*: the cases disagree; *not run*: the runs that decide it are not in "
        "the params (ablations run only with `ablations.tasks` set)."
    )
    return "## Which findings held here\n\n" + intro + "\n\n" + "\n".join(f.markdown() for f in found) + "\n"
