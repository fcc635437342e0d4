"""How the report stage presents results: score tables (Markdown, LaTeX) and figures (matplotlib, Agg canvas).

flows.stages.report computes the numbers; this module only formats and draws them. Figures use matplotlib's object API
with an Agg canvas and never pyplot, so no global backend state is touched and threads are safe.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# -- tables ----------------------------------------------------------------------------------------------


def format_count(count: int) -> str:
    """A parameter count as the paper writes it: 355M, 22.7M, 0.31M, 4.1K.

    Args:
        count: number of parameters.

    Returns:
        The short form.
    """
    if count >= 1e4:
        return f"{count / 1e6:.{0 if count >= 1e8 else 1 if count >= 1e6 else 2}f}M"
    return f"{count / 1e3:.1f}K" if count >= 1e3 else str(count)


@dataclass
class Cell:
    """One table cell: a raw score shown x 100 as mean +- std (no std with one seed), with its seed count."""

    mean: float
    std: float = math.nan
    n: int = 0
    expected_n: int = 0

    def text(self, decimals: int, bold: bool = False, tex: bool = False) -> str:
        """The cell as text, e.g. "81.2 ± 0.4", "n/a" for an undefined mean, "(n=1)" when seeds are missing.

        Args:
            decimals: decimals after scaling by 100.
            bold: mark it as the column's best.
            tex: LaTeX instead of Markdown.

        Returns:
            The cell's text.
        """
        if not math.isfinite(self.mean):
            return "n/a"  # never a NaN printed as a number
        text = f"{self.mean * 100:.{decimals}f}"
        if math.isfinite(self.std):
            text += (r" $\pm$ " if tex else " ± ") + f"{self.std * 100:.{decimals}f}"
        if bold:
            text = rf"\textbf{{{text}}}" if tex else f"**{text}**"
        return text + (f" (n={self.n})" if 0 < self.n < self.expected_n else "")


@dataclass
class Table:
    """A score table: leading text columns (method, params or mode) followed by score cells."""

    header: list[str]
    lead: list[list[str]]  # the leading text cells of each row (method and params, or method and mode)
    cells: list[list[Cell]]

    def rows(self, decimals: int, tex: bool = False) -> list[list[str]]:
        """Rendered rows; each column's best mean is bold when there is more than one row."""
        best = [
            max((c.mean for c in column if math.isfinite(c.mean)), default=math.nan)
            for column in zip(*self.cells, strict=True)
        ]
        escape = _tex_escape if tex else str
        return [
            [escape(text) for text in lead]
            + [
                c.text(decimals, len(self.cells) > 1 and c.mean == b, tex)
                for c, b in zip(cells, best, strict=True)
            ]
            for lead, cells in zip(self.lead, self.cells, strict=True)
        ]

    def markdown(self, decimals: int) -> str:
        """The table in GitHub Markdown, scores right-aligned."""
        lead = len(self.lead[0]) if self.lead else 1
        align = [":---"] * lead + ["---:"] * (len(self.header) - lead)
        lines = ["| " + " | ".join(self.header) + " |", "|" + "|".join(align) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in self.rows(decimals)]) + "\n"

    def latex(self, decimals: int, caption: str) -> str:
        """The table as a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``), the caption as a comment."""
        lines = [
            f"% {caption}",
            r"\begin{tabular}{l" + "r" * (len(self.header) - 1) + "}",
            r"\toprule",
            " & ".join(_tex_escape(h) for h in self.header) + r" \\",
            r"\midrule",
            *(" & ".join(row) + r" \\" for row in self.rows(decimals, tex=True)),
            r"\bottomrule",
            r"\end{tabular}",
        ]
        return "\n".join(lines) + "\n"


def _tex_escape(text: str) -> str:
    special = {c: "\\" + c for c in "&%$#_{}"} | {
        "~": r"\textasciitilde{}",
        "^": r"\^{}",
        "\\": r"\textbackslash{}",
    }
    return "".join(special.get(c, c) for c in text)


# -- figures ---------------------------------------------------------------------------------------------

_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")


def _color(methods: Sequence[str], method: str) -> str:
    return _COLORS[list(methods).index(method) % len(_COLORS)]


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)  # attaches itself to the figure; no global backend state is touched
    figure.savefig(path, format="png", dpi=120, bbox_inches="tight")


Curves = Mapping[str, Mapping[str, Sequence[tuple[float, float]]]]  # task -> method -> [(x, y)] in x order


def plot_curves(
    rows: Sequence[tuple[Curves, str]],
    tasks: Sequence[str],
    methods: Sequence[str],
    labels: Mapping[str, str],
    path: str | Path,
    *,
    xlabel: str,
    empty: str,
) -> None:
    """Line plots, one line per method (mean over seeds), one panel per task and per row of `rows`.

    Args:
        rows: (curves, y-axis label) per row of panels.
        tasks: panel order within a row.
        methods: line order (also fixes each method's colour).
        labels: method -> display name.
        path: the PNG to write.
        xlabel: the x axis (every panel); integer ticks.
        empty: the text of a panel without any finite point.
    """
    figure = Figure(figsize=(4.2 * len(tasks), 3.4 * len(rows)), layout="constrained")
    grid = figure.subplots(len(rows), len(tasks), squeeze=False)
    for axes, (curves, ylabel) in zip(grid, rows, strict=True):
        for axis, task in zip(axes, tasks, strict=True):
            drawn = False
            for method in methods:
                points = [(x, y) for x, y in curves.get(task, {}).get(method, ()) if math.isfinite(y)]
                if points:
                    xs, ys = zip(*points, strict=True)
                    axis.plot(
                        xs, ys, marker="o", color=_color(methods, method), label=labels.get(method, method)
                    )
                    drawn = True
            axis.set_title(task)
            axis.set_xlabel(xlabel)
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.set_ylabel(ylabel)
            axis.grid(alpha=0.3)
            if drawn:
                axis.legend(fontsize="small")
            else:
                axis.text(0.5, 0.5, empty, ha="center", va="center", transform=axis.transAxes)
    _save(figure, Path(path))


def plot_training_curves(
    curves: Curves, tasks: Sequence[str], methods: Sequence[str], labels: Mapping[str, str], path: str | Path
) -> None:
    """Training loss per epoch, one line per method (mean over seeds), one panel per task.

    Args:
        curves: task -> method -> [(epoch, mean train loss)], in epoch order.
        tasks: panel order.
        methods: line order (also fixes each method's colour).
        labels: method -> display name.
        path: the PNG to write.
    """
    plot_curves(
        [(curves, "train loss")], tasks, methods, labels, path, xlabel="epoch", empty="no training history"
    )


def plot_scores(
    scores: Mapping[str, Mapping[str, tuple[float, float]]],
    tasks: Sequence[str],
    methods: Sequence[str],
    labels: Mapping[str, str],
    ylabel: str,
    path: str | Path,
) -> None:
    """Primary score per method per task: grouped bars with standard-deviation error bars.

    Args:
        scores: task -> method -> (mean, std), both already scaled for display; NaN std draws no bar.
        tasks: group order along the x axis.
        methods: bar order within a group (also fixes each method's colour).
        labels: method -> display name.
        ylabel: the y axis label.
        path: the PNG to write.
    """
    columns = min(len(methods), 3)
    legend = columns * (0.5 + 0.07 * max((len(labels[m]) for m in methods), default=0))  # inches, roughly
    figure = Figure(
        figsize=(max(4.5, 1.6 * len(tasks) * max(1, len(methods)) / 3, legend), 3.6), layout="constrained"
    )
    axis = figure.subplots()
    width, lows = 0.8 / max(1, len(methods)), []
    for index, method in enumerate(methods):
        xs, means, errors = [], [], []
        for position, task in enumerate(tasks):
            mean, std = scores.get(task, {}).get(method, (math.nan, math.nan))
            if math.isfinite(mean):
                xs.append(position - 0.4 + width * (index + 0.5))
                means.append(mean)
                errors.append(std if math.isfinite(std) else 0.0)
                lows.append(mean - errors[-1])
        axis.bar(
            xs, means, width, yerr=errors, capsize=3, color=_color(methods, method), label=labels[method]
        )
    if lows and min(lows) > 0:  # zoom in on the differences: start the axis a little below the lowest bar
        axis.set_ylim(bottom=max(0.0, 5 * math.floor(min(lows) / 5) - 5))
    axis.set_xticks(range(len(tasks)), list(tasks))
    axis.set_ylabel(ylabel)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize="small", ncols=columns, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    _save(figure, Path(path))


def plot_ablation(
    scores: Mapping[str, Sequence[tuple[str, float, float]]], title: str, ylabel: str, path: str | Path
) -> None:
    """Score against an ablation grid's values, one line per task, standard-deviation error bars.

    Values are drawn evenly spaced in the grid's order (they may be words, like ``up``/``down``/``none``).

    Args:
        scores: task -> [(value label, mean, std)] in the grid's order, scaled for display; NaN std: no bar.
        title: the figure title (what was varied).
        ylabel: the y axis label.
        path: the PNG to write.
    """
    most = max((len(points) for points in scores.values()), default=1)
    figure = Figure(figsize=(max(4.5, 1.1 * most), 3.6), layout="constrained")
    axis = figure.subplots()
    tasks = list(scores)
    labels: list[str] = []
    for task, points in scores.items():
        labels = labels or [label for label, _, _ in points]
        finite = [
            (i, m, s if math.isfinite(s) else 0.0) for i, (_, m, s) in enumerate(points) if math.isfinite(m)
        ]
        if finite:
            xs, means, errors = zip(*finite, strict=True)
            axis.errorbar(
                xs, means, yerr=errors, marker="o", capsize=3, color=_color(tasks, task), label=task
            )
    axis.set_xticks(range(len(labels)), labels, fontsize="small")
    axis.set_title(title, fontsize="medium")
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    if axis.lines:
        axis.legend(fontsize="small")
    else:
        axis.text(0.5, 0.5, "no scores", ha="center", va="center", transform=axis.transAxes)
    _save(figure, Path(path))


def plot_loss_curves(
    curves: Mapping[str, Mapping[str, Sequence[float]]], ylabel: str, path: str | Path
) -> None:
    """Per-step training loss, one line per setting, one panel per task.

    Args:
        curves: task -> setting label -> loss per step (already averaged and smoothed); empty: not drawn.
        ylabel: the y axis label.
        path: the PNG to write.
    """
    tasks = list(curves) or ["(no task)"]
    figure = Figure(figsize=(4.6 * len(tasks), 3.4), layout="constrained")
    axes = figure.subplots(1, len(tasks), squeeze=False)[0]
    for axis, task in zip(axes, tasks, strict=True):
        settings = list(curves.get(task, {}))
        for setting, losses in curves.get(task, {}).items():
            if len(losses):
                axis.plot(range(1, len(losses) + 1), losses, color=_color(settings, setting), label=setting)
        axis.set_title(task)
        axis.set_xlabel("training step")
        axis.set_ylabel(ylabel, fontsize="small")
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize="small")
        else:
            axis.text(
                0.5, 0.5, "no per-step loss recorded", ha="center", va="center", transform=axis.transAxes
            )
    _save(figure, Path(path))


def plot_placeholder(text: str, path: str | Path) -> None:
    """A small figure that only says why there is nothing to draw (declared plots must always exist)."""
    figure = Figure(figsize=(4.5, 1.2))
    figure.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    _save(figure, Path(path))
