"""A generate job: resume parts, the loop per label, filters, the output file and its provenance.

While a job runs, finished rows are saved in chunks under ``OUT.parts/``; the
final file appears only when every label is complete. A killed job re-run with
``--resume`` reuses those rows (a row depends only on its seed, label and index),
with any batch size or number of processes, so the output ends with exactly the
requested rows, none lost, none repeated, byte-identical to an uninterrupted job.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from augment.config import GenerateConfig
from augment.generate.context import check_job_fits, config_dir, prompt_texts, train_texts
from augment.errors import AugmentError
from augment.filter import FilterConfig, FilterReport, filter_synthetic
from augment.distributed import Comm, LocalComm, on_rank0
from augment.generate.loop import Texts, collect_rows, resolve_batch_size
from augment.generate.sampler import COLUMNS, SAMPLER_VERSION, RunWeights
from augment.instruct import PARSER_VERSION
from augment.files import (atomic_path, check_output_path, hash_json, holds_lock, slug, write_json_atomic,
                           write_jsonl_atomic)
from augment.models import placement
from augment.precision import PrecisionChoice, keyed
from augment.provenance import Provenance
from augment.resume import open_work_folder
from augment.rundir import AdapterRecord, RunDir

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}


def output_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AugmentError(f"{path}: unknown output type '{path.suffix}'; expected {', '.join(FORMATS)}")
    return fmt


def write_table(frame: pd.DataFrame, path: Path, overwrite: bool = True) -> None:
    fmt = output_format(path)
    if fmt == "jsonl":
        write_jsonl_atomic(path, frame.to_dict("records"), overwrite=overwrite)
        return
    with atomic_path(path, overwrite=overwrite) as tmp:
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            # The csv module quotes a field holding "\n" but not a lone "\r", which readers take for a
            # line end (and a model can generate); quote every field then.
            quoting = csv.QUOTE_ALL if _has_cr(frame) else csv.QUOTE_MINIMAL
            frame.to_csv(tmp, index=False, sep="\t" if fmt == "tsv" else ",", quoting=quoting)


def _has_cr(frame: pd.DataFrame) -> bool:
    cells = (v for col in frame.columns for v in frame[col].tolist())
    return any(isinstance(v, str) and "\r" in v for v in (*map(str, frame.columns), *cells))


def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def dropped_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.dropped{out.suffix}")


@holds_lock("out")  # one job per output: a second is told who holds it
def generate_to_file(run: RunDir, labels: list[str], config: GenerateConfig, out: Path, *,
                     overwrite: bool = False, resume: bool = False, precision: str = "auto",
                     filter_config: FilterConfig | None = None,
                     on_rows: Callable[[str, int], None] | None = None,
                     comm: Comm | None = None,
                     prefix_texts: Sequence[str] | None = None) -> GenerateResult | None:
    """Generate ``config.n`` rows per label; with ``filter_config`` write only the rows
    that pass the filters to ``out`` and the rest, with the filter that dropped them,
    beside it as ``NAME.dropped.EXT``.

    Prompts start with the first ``config.prefix_words`` words of the label's training
    rows, or of ``prefix_texts`` (say, unlabelled rows of the same domain) when given.

    Under a launcher (``comm`` from ``augment.distributed.comm_from_env``) the rows are
    spread over the ranks and the output is the one a single process writes; rank 0
    filters and writes it and gets the result, the other ranks get ``None``.
    """
    comm = comm or LocalComm()
    out = Path(out)
    output_format(out)
    prefixes_hash = None if prefix_texts is None else hash_json(list(prefix_texts))

    def open_job() -> tuple[Path, PrecisionChoice]:
        check_output_path(out, overwrite)
        for label in labels:
            run.finished_model(label)
        check_job_fits(run, labels, config, prefix_texts)  # before any weights load
        manifest = run.read_manifest()
        chosen = placement(precision, model=config_dir(run, manifest, labels[0])).choice  # one format for all
        return _open_parts(parts_dir(out), run, labels, config, resume, prefixes_hash, chosen.precision), chosen

    parts, chosen = on_rank0(comm, open_job)
    parts.mkdir(parents=True, exist_ok=True)  # ranks on another node's disk keep their own parts
    frames, batch_sizes, dropped = [], {}, {}
    weights = RunWeights.open(run, labels, chosen.precision)  # an adapter or instruct run's base loads once
    for label in labels:
        gen = weights.generator(label)
        size = comm.all_gather(resolve_batch_size(gen, config))[0]
        batch_sizes[label] = size
        rows = collect_rows(gen, config, prompt_texts(run, label, prefix_texts), comm, size=size,
                            cached=_read_parts(parts, label),
                            saved=lambda texts, label=label: _write_part(parts, label, texts),
                            on_rows=(lambda k, label=label: on_rows(label, k)) if on_rows else None,
                            on_dropped=lambda counts, label=label: dropped.__setitem__(label, counts))
        frames.append(pd.DataFrame(rows, columns=COLUMNS))
    if comm.rank != 0:
        return None
    generated = pd.concat(frames, ignore_index=True)
    report = None
    frame = generated
    if filter_config is not None:
        train = pd.DataFrame([r for l in labels for r in ({"text": t, "label": l} for t in train_texts(run, l))],
                             columns=["text", "label"])
        result = filter_synthetic(generated, train, filter_config, seed=config.seed)
        frame, report = result.kept.reset_index(drop=True), result.report
        write_table(result.dropped.reset_index(drop=True), dropped_path(out), overwrite=True)
    write_table(frame, out, overwrite=True)
    manifest = run.read_manifest()
    record = GenerationProvenance.now(
        config, run_dir=str(run.root), labels=labels, rows=len(frame), rows_generated=len(generated),
        filter=report, batch_sizes=batch_sizes, world_size=comm.world_size, sampler=SAMPLER_VERSION,
        prefixes="training rows" if prefix_texts is None else Prefixes(texts=len(prefix_texts), hash=prefixes_hash),
        models={l: manifest.model_for(l, run.root).hash for l in labels},
        finetune=manifest.finetune, data=manifest.data, precision=chosen, adapter=manifest.adapter,
        answers_dropped=dropped if manifest.mode == "instruct" else None)
    write_json_atomic(out.with_name(out.name + ".provenance.json"), record.model_dump(mode="json"))
    shutil.rmtree(parts, ignore_errors=True)
    return GenerateResult(frame, generated, report, record.answers_dropped)


class Prefixes(BaseModel):
    """The texts prompts took their first words from, when not the training rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    texts: int
    hash: str


class GenerationProvenance(Provenance):
    """``OUT.provenance.json`` of a generate job: what made its rows."""

    config: GenerateConfig
    run_dir: str
    labels: list[str]
    rows: int
    rows_generated: int
    filter: FilterReport | None
    batch_sizes: dict[str, int]
    world_size: int
    sampler: str
    prefixes: Literal["training rows"] | Prefixes
    models: dict[str, str]
    finetune: dict[str, Any]
    data: dict[str, Any]
    precision: PrecisionChoice | None = None   # files written before the choice was recorded: fp32
    adapter: AdapterRecord | None = Field(None, exclude_if=lambda v: v is None)  # LoRA: settings, base + hash
    answers_dropped: dict[str, dict[str, int]] | None = Field(  # instruct mode: refusals, empty answers by label
        None, exclude_if=lambda v: v is None)


@dataclass(frozen=True)
class GenerateResult:
    """What was written (``rows``), everything sampled (``generated``) and the filter report."""

    rows: pd.DataFrame
    generated: pd.DataFrame
    filter_report: FilterReport | None
    answers_dropped: dict[str, dict[str, int]] | None = None   # instruct mode: label -> reason -> answers


def _open_parts(parts: Path, run: RunDir, labels: list[str], config: GenerateConfig, resume: bool,
                prefixes_hash: str | None = None, precision: str = "fp32") -> Path:
    settings = {k: v for k, v in config.model_dump().items() if k != "batch_size"}  # rows do not depend on it
    manifest = run.read_manifest()
    key = {"run": str(run.root.resolve()), "labels": labels, "config": settings, "sampler": SAMPLER_VERSION,
           "models": hash_json(manifest.model_dump(mode="json")["models"])}
    if manifest.mode == "instruct":   # the prompt and the parser make the rows too
        key["instruct"] = {**manifest.finetune["instruct"], "parser": PARSER_VERSION}
    if prefixes_hash is not None:
        key["prefixes"] = prefixes_hash
    open_work_folder(parts, keyed(key, precision), record="job.json", what="job", resume=resume, overwrite=None)
    return parts


def _part_path(parts: Path, label: str, first: int) -> Path:
    return parts / f"{slug(label)}-{first:07d}.jsonl"


def _read_parts(parts: Path, label: str) -> Texts:
    """Rows earlier jobs finished for ``label`` (any batch size, any rank): index -> text."""
    texts: Texts = {}
    for path in sorted(parts.glob(f"{slug(label)}-*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            texts.update((r["index"], r["text"]) for r in map(json.loads, fh))
    return texts


def _write_part(parts: Path, label: str, texts: Texts) -> None:
    """A chunk of finished rows, named by its first index (unique: no row is sampled twice)."""
    write_jsonl_atomic(_part_path(parts, label, min(texts)),
                       [{"index": i, "text": t} for i, t in sorted(texts.items())])
