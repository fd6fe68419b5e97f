"""Rows a job has finished, saved in chunks under ``OUT.parts/`` so that a killed job resumes.

A row depends only on its seed, label and index, so chunks written with any batch size
or number of processes are reused as they are; the folder's key says which job they
belong to, and a job with other settings is refused rather than mixed in.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from augment.config import GenerateConfig
from augment.files import hash_json, slug, write_jsonl_atomic
from augment.generate.generators import Generators
from augment.generate.loop import Texts
from augment.generate.sampler import SAMPLER_VERSION
from augment.instruct import PARSER_VERSION
from augment.precision import keyed
from augment.resume import open_work_folder


def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


@dataclass(frozen=True)
class Parts:
    folder: Path

    @classmethod
    def open(cls, folder: Path, gens: Generators, labels: Sequence[str], config: GenerateConfig, *, resume: bool,
             prefixes_hash: str | None = None) -> "Parts":
        """The folder for this job's rows: new, or (``resume``) an earlier one of the same job (same format too)."""
        settings = {k: v for k, v in config.model_dump().items() if k != "batch_size"}  # rows do not depend on it
        key = {"run": str(gens.run.root.resolve()), "labels": list(labels), "config": settings,
               "sampler": SAMPLER_VERSION, "models": hash_json(gens.manifest.model_dump(mode="json")["models"])}
        if gens.instruct:   # the prompt and the parser make the rows too
            key["instruct"] = {**gens.manifest.finetune["instruct"], "parser": PARSER_VERSION}
        if prefixes_hash is not None:
            key["prefixes"] = prefixes_hash
        open_work_folder(folder, keyed(key, gens.place.choice.precision), record="job.json", what="job", resume=resume,
                         overwrite=None)
        return cls(folder)

    def cached(self, label: str) -> Texts:
        """Rows earlier jobs finished for ``label`` (any batch size, any rank): index -> text."""
        texts: Texts = {}
        for path in sorted(self.folder.glob(f"{slug(label)}-*.jsonl")):
            with open(path, encoding="utf-8") as fh:
                texts.update((r["index"], r["text"]) for r in map(json.loads, fh))
        return texts

    def save(self, label: str, texts: Texts) -> None:
        """A chunk of finished rows, named by its first index (unique: no row is sampled twice)."""
        self.folder.mkdir(parents=True, exist_ok=True)  # ranks on another node's disk keep their own parts
        write_jsonl_atomic(self.folder / f"{slug(label)}-{min(texts):07d}.jsonl",
                           [{"index": i, "text": t} for i, t in sorted(texts.items())])

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
