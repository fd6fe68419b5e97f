"""PNG plots of the report (matplotlib, Agg back-end: no display needed)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from augment.experiment.groups import Group
from augment.files import atomic_path, slug


def write_plots(groups: list[Group], out_dir: Path) -> list[Path]:
    """Per (dataset, classifier): lift in macro-F1 vs examples per class, and macro-F1 itself."""
    paths = []
    for dataset, classifier in sorted({g.panel for g in groups}):
        panel = [g for g in groups if g.panel == (dataset, classifier)]
        name = f"{slug(dataset)}-{slug(classifier)}"
        paths.append(_plot(panel, out_dir / f"lift-{name}.png", lift=True,
                           title=f"Lift in macro-F1 over no augmentation ({dataset}, {classifier})"))
        paths.append(_plot(panel, out_dir / f"scores-{name}.png", lift=False,
                           title=f"Macro-F1 on the held-out test split ({dataset}, {classifier})"))
    return paths


def _plot(groups: list[Group], path: Path, lift: bool, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: dict[str, list[tuple[int, float, float | None, float | None]]] = defaultdict(list)
    for g in groups:
        iv = g.lift_macro_f1 if lift else g.macro_f1
        if iv is None:
            continue
        scale = 100 if lift else 1
        low, high = (None, None) if iv.low is None else (scale * iv.low, scale * iv.high)
        lines[g.variant].append((g.key.examples_per_class, scale * iv.mean, low, high))
    fig, ax = plt.subplots(figsize=(8.5, 4.5), dpi=110)
    for i, (variant, points) in enumerate(lines.items()):
        _draw(ax, sorted(points), variant, _nudge(i, len(lines)))
    if lift:
        ax.axhline(0, color="black", linewidth=0.8)
    sizes = sorted({g.key.examples_per_class for g in groups})
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("real examples per class")
    ax.set_ylabel("lift in macro-F1 (points, 95% CI)" if lift else "macro-F1 (95% CI)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def _nudge(index: int, count: int) -> float:
    """A small multiplicative x offset per variant (the axis is logarithmic), so that error bars at
    the same size sit side by side instead of on top of each other."""
    return 10 ** ((index - (count - 1) / 2) * 0.012)


def _draw(ax: Any, points: list[tuple[int, float, float | None, float | None]], variant: str, nudge: float) -> None:
    """Each interval as an error bar: with a single size per class a band would be an invisible line."""
    xs = [p[0] * nudge for p in points]
    ys = [p[1] for p in points]
    has = [p[2] is not None for p in points]
    (line,) = ax.plot(xs, ys, marker="o", label=variant)
    if any(has):
        ax.errorbar([x for x, h in zip(xs, has) if h], [y for y, h in zip(ys, has) if h],
                    yerr=[[p[1] - p[2] for p in points if p[2] is not None],
                          [p[3] - p[1] for p in points if p[2] is not None]],
                    fmt="none", ecolor=line.get_color(), elinewidth=1.2, capsize=4)
