"""``augment experiment run CONFIG`` and ``augment experiment report CONFIG|DIR``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

experiment_app = typer.Typer(no_args_is_help=True, add_completion=False,
                             help="Run an augmentation grid and report the lift over no augmentation.")
console = Console(stderr=True)
out_console = Console()


@experiment_app.command("run")
def run(
    config: Annotated[Path, typer.Argument(help="Experiment YAML.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Results directory "
                                                "(default: results/NAME next to the YAML).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Discard finished cells and start over (cached LMs are kept).")]
    = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and show the grid size; run nothing.")]
    = False,
    cache: Annotated[Optional[Path], typer.Option(help="Folder of cached LMs and pools, shareable between "
                                                  "configs: each artefact is keyed by all it depends on "
                                                  "(default: OUT/cache).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    only: Annotated[Optional[list[str]], typer.Option(
        help="Run only this augmenter's cells (repeatable), e.g. a new recipe and none on every corpus first; "
             "a later run without it does the rest.")] = None,
) -> None:
    """Run every unfinished cell of the grid, then write the report."""
    from augment.experiment import default_out_dir, expand, load_experiment, run_experiment, write_report
    from augment.experiment.data import prepare
    from augment.interrupts import on_interrupt

    cfg = load_experiment(config)
    out_dir = out or default_out_dir(config, cfg)
    if dry_run:
        prepare(cfg)
        out_console.print(f"{config}: valid; {len(expand(cfg))} cells -> {out_dir}")
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, disable=not progress)
    task: dict[str, Any] = {}
    start = time.perf_counter()

    def on_plan(total: int, todo: int) -> None:
        plan = f"{todo} of {', '.join(only)} to run" if only else f"{total - todo} already finished, {todo} to run"
        console.print(f"{total} cells, {plan} -> {out_dir}")
        task["id"] = bar.add_task("cells", total=todo)

    def on_cell(cell: Any, row: Any) -> None:
        bar.update(task["id"], advance=1, description=f"{cell.examples_per_class}/class seed {cell.seed} "
                                                       f"{cell.augmenter.name}")

    on_interrupt(lambda: _cells_saved(out_dir), drop=("--overwrite",))  # a re-run skips finished cells
    with bar:
        summary = run_experiment(cfg, out_dir, overwrite=overwrite, on_plan=on_plan, on_cell=on_cell,
                                 source=config, cache=cache, only=only or ())
    path, groups = write_report(cfg, out_dir)
    out_console.print(lift_table(groups, f"{cfg.name}: lift in macro-F1 (points, 95% CI)"))
    console.print(f"ran {summary.ran} cells ({summary.skipped} skipped) in "
                  f"{(time.perf_counter() - start) / 60:.1f} min; report: {path}")


def _cells_saved(out_dir: Path) -> str:
    from augment.experiment.results import RESULTS, ResultsLog

    return f"{len(ResultsLog(out_dir / RESULTS).read())} finished cells kept in {out_dir / RESULTS}"


@experiment_app.command("report")
def report(target: Annotated[Path, typer.Argument(help="Experiment YAML or its results directory.")]) -> None:
    """Rebuild report.md and the plots from results.jsonl."""
    from augment.experiment import load_target, write_report

    cfg, out_dir = load_target(target)
    path, groups = write_report(cfg, out_dir)
    out_console.print(lift_table(groups, f"{cfg.name}: lift in macro-F1 (points, 95% CI)"))
    console.print(f"report: {path}")


@experiment_app.command("summary")
def summary(
    targets: Annotated[list[Path], typer.Argument(help="Experiment YAMLs or results directories.")],
    readme: Annotated[Optional[Path], typer.Option(help="Rewrite this file's does-it-help block with the tables.")]
    = None,
) -> None:
    """The "Does it help?" tables: per classifier, none / best EDA / oracle / pseudo-label / best LM, chosen on
    validation."""
    from augment.experiment.summary import summary_markdown, update_readme

    block = summary_markdown(targets)
    if readme is None:
        typer.echo(block, nl=False)  # markdown: not wrapped to the terminal
        return
    changed = update_readme(readme, block)
    console.print(f"{readme}: {'updated' if changed else 'already up to date'}")


@experiment_app.command("corpora")
def corpora(
    target: Annotated[Path, typer.Argument(help="A suite's experiment YAML (several datasets) or its results directory.")],
    augmenter: Annotated[str, typer.Option(help="The augmenter whose lift each corpus row shows.")],
    readme: Annotated[Optional[Path], typer.Option(help="Rewrite this file's corpora block with the table.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Write the forest plot here (PNG); the table links it "
                                                      "relative to --readme.")] = None,
) -> None:
    """One table across corpora: an augmenter's test lift per corpus and classifier, the oracle's beside it,
    and the honest per-seed choice (augment run --check)."""
    import os

    from augment.experiment import load_target
    from augment.experiment.corpora import MARKERS, corpora_markdown, corpora_table, write_forest_plot
    from augment.experiment.summary import update_readme

    cfg, out_dir = load_target(target)
    table = corpora_table(cfg, out_dir, augmenter)
    link = None
    if plot is not None:
        write_forest_plot(table, plot)
        link = os.path.relpath(plot, readme.parent if readme else Path.cwd())
    command = f"augment experiment corpora {target} --augmenter {augmenter}" + (
        f" --readme {readme}" if readme else "") + (f" --plot {plot}" if plot else "")
    block = corpora_markdown(table, command, link)
    if readme is None:
        typer.echo(block, nl=False)
        return
    changed = update_readme(readme, block, MARKERS)
    console.print(f"{readme}: {'updated' if changed else 'already up to date'}")


def lift_table(groups: list[Any], title: str) -> Table:
    """The report's lift table for a terminal: columns that never vary move into the title."""
    from augment.experiment.report import lift_rows

    header, rows = lift_rows(groups)
    constant = [i for i, col in enumerate(header[:2]) if len({r[i] for r in rows}) == 1]
    if constant:
        title += " — " + ", ".join(rows[0][i] for i in constant)
    table = Table(title=title)
    keep = [i for i in range(len(header)) if i not in constant]
    for i in keep:
        table.add_column(header[i], justify="right" if header[i].endswith("/class") else "left")
    for row in rows:
        table.add_row(*[row[i].replace("**", "").replace("macro-F1 ", "F1 ") for i in keep])
    return table
