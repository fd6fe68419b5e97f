"""Does bf16 pay for the embedding classifiers on this CPU? MiniLM-L6 sentence encoding in fp32, under bf16
autocast (fp32 weights), and with bf16 weights, on the same real tweets.

    python -m benchmarks.embedding_precision [--texts 1024] [--repeats 3] [--smoke]

The formats alternate and the best repeat counts (load only slows a case down). Besides texts/s it reports
how far the bf16 vectors are from the fp32 ones (the smallest cosine over the texts) and whether a
logistic regression on 10 rows per class predicts the same labels on the rest: what minilm-lr and
SetFit's body would see. ``precision: auto`` takes bf16 only where a format is at least 1.5x faster.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

CASES = ("fp32", "bf16 autocast", "bf16 weights")


def encoders(path: str) -> dict[str, tuple[Any, bool]]:
    from classifiers.embedding import load_encoder

    fp32 = load_encoder(path, "cpu")
    return {"fp32": (fp32, False), "bf16 autocast": (fp32, True),
            "bf16 weights": (copy.deepcopy(fp32).to(torch.bfloat16), False)}


def encode(model: Any, autocast: bool, texts: list[str], batch: int) -> np.ndarray:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        vectors = model.encode(texts, batch_size=batch, convert_to_tensor=True, normalize_embeddings=True,
                               show_progress_bar=False)
    return vectors.float().numpy()


def agreement(reference: np.ndarray, other: np.ndarray, labels: list[str], per_class: int = 10) -> float:
    """Share of held-out texts a 10-per-class logistic regression labels the same on both vector sets."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(labels)
    train = np.concatenate([np.flatnonzero(y == label)[:per_class] for label in sorted(set(labels))])
    rest = np.setdiff1d(np.arange(len(y)), train)
    predicted = [LogisticRegression(max_iter=1000).fit(vectors[train], y[train]).predict(vectors[rest])
                 for vectors in (reference, other)]
    return float(np.mean(predicted[0] == predicted[1]))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.embedding_precision",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="64 texts, one repeat: seconds")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/embedding-precision.json"))
    args = parser.parse_args(argv)
    if args.smoke:
        args.texts, args.repeats = 64, 1
    from augment.config import DataConfig
    from augment.data import load_dataset
    from augment.files import package_versions, write_json_atomic
    from augment.precision import cpu_units, processor_name
    from classifiers.embedding import minilm_path

    frame = load_dataset("crowdflower", DataConfig(path="crowdflower", labels=["positive", "negative"],
                                                   per_class=args.texts // 2, seed=0))
    texts, labels = frame["text"].tolist(), frame["label"].tolist()
    cases = encoders(str(minilm_path()))
    encode(*cases["fp32"], texts[:8], args.batch)   # warm-up: thread pool, lazy imports
    seconds: dict[str, list[float]] = {name: [] for name in CASES}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name in CASES:
            began = time.perf_counter()
            vectors[name] = encode(*cases[name], texts, args.batch)
            seconds[name].append(round(time.perf_counter() - began, 3))
    rows = []
    for name in CASES:
        best = min(seconds[name])
        rows.append({"case": name, "texts": len(texts), "best_s": best, "texts_per_s": round(len(texts) / best, 1),
                     "vs_fp32": round(min(seconds["fp32"]) / best, 2), "all_seconds": seconds[name],
                     "min_cosine_to_fp32": round(float((vectors[name] * vectors["fp32"]).sum(axis=1).min()), 6),
                     "same_labels_as_fp32": round(agreement(vectors["fp32"], vectors[name], labels), 4)})
    result = {"command": "python -m benchmarks.embedding_precision " + shlex.join(argv or sys.argv[1:]),
              "processor": processor_name(), "units": cpu_units(), "threads": torch.get_num_threads(),
              "versions": package_versions(("torch", "sentence-transformers")), "results": rows}
    write_json_atomic(args.out, result)
    print(f"{result['processor']} ({', '.join(result['units']) or 'no bf16 units listed'}), "
          f"{result['threads']} threads, {len(texts)} tweets")
    print("| case | texts/s | vs fp32 | min cosine to fp32 | same labels as fp32 |\n|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['texts_per_s']} | {r['vs_fp32']}x | {r['min_cosine_to_fp32']} | "
              f"{r['same_labels_as_fp32']:.1%} |")
    return result


if __name__ == "__main__":
    main()
