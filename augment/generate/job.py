"""A generate job: its rows (``generate_rows``) written to a file, with filters, resume parts and provenance.

While a job runs, finished rows are saved in chunks under ``OUT.parts/``; the
final file appears only when every label is complete. A killed job re-run with
``--resume`` reuses those rows (a row depends only on its seed, label and index),
with any batch size or number of processes, so the output ends with exactly the
requested rows, none lost, none repeated, byte-identical to an uninterrupted job.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from augment.config import GenerateConfig
from augment.errors import AugmentError
from augment.filter import FilterConfig, FilterReport, filter_synthetic
from augment.distributed import Comm, LocalComm, on_rank0
from augment.files import atomic_path, check_output_path, hash_json, holds_lock, write_json_atomic, write_jsonl_atomic
from augment.generate.generators import Generators
from augment.generate.parts import Parts, parts_dir
from augment.generate.rows import generate_rows
from augment.generate.sampler import SAMPLER_VERSION
from augment.precision import PrecisionChoice
from augment.provenance import Provenance
from augment.rundir import AdapterRecord, Manifest, RunDir

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
    given = None if prefix_texts is None else {label: prefix_texts for label in labels}

    opened: list[Generators] = []

    def open_job() -> tuple[Manifest, Parts, PrecisionChoice]:
        check_output_path(out, overwrite)
        opened.append(gens := Generators.open(run, labels, precision))   # one format for all labels: rank 0's
        gens.check_fits(labels, config, given)  # before any weights load
        parts = Parts.open(parts_dir(out), gens, labels, config, resume=resume, prefixes_hash=prefixes_hash)
        return gens.manifest, parts, gens.place.choice

    manifest, parts, chosen = on_rank0(comm, open_job)
    gens = opened[0] if opened else Generators.open(run, labels, chosen.precision, manifest)
    made = generate_rows(gens, labels, config, prefix_texts=given, comm=comm, parts=parts, on_rows=on_rows)
    if comm.rank != 0:
        return None
    generated, report, frame = made.rows, None, made.rows
    if filter_config is not None:
        train = pd.DataFrame([{"text": t, "label": l} for l in labels for t in gens.train_texts(l)],
                             columns=["text", "label"])
        result = filter_synthetic(generated, train, filter_config, seed=config.seed)
        frame, report = result.kept.reset_index(drop=True), result.report
        write_table(result.dropped.reset_index(drop=True), dropped_path(out), overwrite=True)
    write_table(frame, out, overwrite=True)
    record = GenerationProvenance.now(
        config, run_dir=str(run.root), labels=labels, rows=len(frame), rows_generated=len(generated),
        filter=report, batch_sizes=made.batch_sizes, world_size=comm.world_size, sampler=SAMPLER_VERSION,
        prefixes="training rows" if prefix_texts is None else Prefixes(texts=len(prefix_texts), hash=prefixes_hash),
        models={l: manifest.model_for(l, run.root).hash for l in labels},
        finetune=manifest.finetune, data=manifest.data, precision=chosen, adapter=manifest.adapter,
        answers_dropped=made.answers_dropped)
    write_json_atomic(out.with_name(out.name + ".provenance.json"), record.model_dump(mode="json"))
    parts.remove()
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
