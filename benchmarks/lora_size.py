"""A LoRA per-label run on a real model, through the product's own path: bytes per label on disk, LoRA
training tokens/s, and (optionally) a few generated rows per label from the base loaded once.

    python -m benchmarks.lora_size --model qwen2.5-coder-1.5b-instruct --steps 2 --rows 8 \\
        --out benchmarks/results/lora-size-1.5b.json

Rows are CrowdFlower positive/negative tweets (``--rows`` per label). Training tokens/s is
steps x batch x block over the wall time of ``Trainer.train`` (model loading excluded, the first
step included), as ``augment finetune`` records it in ``run.json``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def folder_bytes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from augment.api import Augmenter
    from augment.config import DataConfig, FinetuneConfig
    from augment.data import load_dataset
    from augment.finetune import finetune_run
    from augment.models import resolve_model

    data = DataConfig(path="crowdflower", labels=["positive", "negative"], per_class=args.rows, seed=0)
    frame = load_dataset("crowdflower", data)
    config = FinetuneConfig(model=args.model, adapter="lora", lora_rank=args.rank, max_steps=args.steps,
                            batch_size=args.batch, block_size=args.block, save_steps=10 ** 6,
                            precision=args.precision)
    base = Path(resolve_model(args.model))
    began = time.perf_counter()
    manifest = finetune_run(frame, work / "run", config, data_info=data.model_dump())
    finetune_s = time.perf_counter() - began
    labels = {}
    for label, entry in manifest.labels.items():
        model = manifest.models[entry.model]
        files = folder_bytes(work / "run" / entry.model)
        tokens = model.steps * args.batch * args.block
        labels[label] = {"files": files, "bytes": sum(files.values()), "steps": model.steps,
                         "train_wall_s": model.wall_s, "train_tokens": tokens,
                         "train_tokens_per_s": round(tokens / model.wall_s, 2) if model.wall_s else None,
                         "loss_first_last": [model.first_loss, model.final_loss],
                         "precision": model.precision.precision if model.precision else None}
    result: dict[str, Any] = {
        "model": args.model, "base_bytes": sum(folder_bytes(base).values()),
        "adapter": manifest.adapter.model_dump(mode="json") if manifest.adapter else None,
        "labels": labels, "finetune_wall_s": round(finetune_s, 1),
    }
    if args.generate:
        began = time.perf_counter()
        rows = Augmenter.load(work / "run", args.precision).generate(n=args.generate, max_new_tokens=24, seed=0)
        result["generate"] = {"rows_per_label": args.generate, "wall_s": round(time.perf_counter() - began, 1),
                              "rows": rows[["label", "text"]].to_dict("records")}
    if args.compare_merged:
        result["merged"] = compare_merged(work, sorted(manifest.labels)[0], args.compare_merged)
    return result


def compare_merged(work: Path, label: str, n: int) -> dict[str, Any]:
    """fp32 rows of one label from the base + adapter (unmerged, as jobs run it) and from the merged export,
    with the decode time of each (models already loaded)."""
    from augment.api import Augmenter
    from augment.distributed import LocalComm
    from augment.export import export_label
    from augment.generate import LabelGenerator, collect_rows
    from augment.models import load_model, load_tokenizer, placement
    from augment.rundir import RunDir

    config = dict(n=n, max_new_tokens=24, seed=0, batch_size=n)
    served = Augmenter.load(work / "run", "fp32")
    served.generate(label, n=1, max_new_tokens=2)
    began = time.perf_counter()
    adapter_rows = served.generate(label, **config)["text"].tolist()
    adapter_s = time.perf_counter() - began
    gen = served._generators.generator(label)
    del served
    export_label(RunDir(work / "run"), label, work / "merged")
    model = load_model(str(work / "merged")).eval()
    plain = LabelGenerator(model, load_tokenizer(str(work / "merged")), placement("fp32"), label, False,
                           gen.all_labels, gen.model_name, gen.separator_id)
    from augment.config import GenerateConfig

    began = time.perf_counter()
    merged_rows = [r["text"] for r in collect_rows(plain, GenerateConfig(**config), [], LocalComm())]
    merged_s = time.perf_counter() - began
    return {"label": label, "rows": n, "precision": "fp32", "identical_rows": sum(a == b for a, b in
                                                                                zip(adapter_rows, merged_rows)),
            "adapter_decode_s": round(adapter_s, 2), "merged_decode_s": round(merged_s, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--rows", type=int, default=8, help="Training rows per label.")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--block", type=int, default=64)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--generate", type=int, default=0, help="Rows per label to generate afterwards (0: none).")
    parser.add_argument("--compare-merged", type=int, default=0,
                        help="Rows of the first label to generate in fp32 from base + adapter and from the merged "
                             "export (0: skip).")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from augment.files import package_versions, write_json_atomic

    with tempfile.TemporaryDirectory(prefix="lora-size-") as tmp:
        result = measure(args, Path(tmp))
    result["command"] = "python -m benchmarks.lora_size " + shlex.join(argv if argv is not None else sys.argv[1:])
    result["machine"] = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                         "versions": package_versions(("torch", "transformers", "peft"))}
    write_json_atomic(args.out, result)
    for label, info in result["labels"].items():
        print(f"{label}: {info['bytes'] / 1e6:.1f} MB, {info['train_tokens_per_s']} training tokens/s")


if __name__ == "__main__":
    main()
