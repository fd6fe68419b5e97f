"""The LLM judge against the few-shot classifiers on the project's validation rows.

    python -m benchmarks.judge --task 2class --models qwen2.5-coder-0.5b-instruct --rows 500 \\
        --out benchmarks/results/judge-2class.json [--smoke]

The rows are the experiments' own: the same split as ``experiments/tweets-setfit.yaml`` (test: 2000
rows, seed 0, never read here; validation: a 2000-row pool draw, seed 1) through
``augment.experiment.data.prepare``. Each seed's training sample is ``examples_per_class`` rows per
label (``PreparedData.sample``, as in the grid); the validation rows are the draw less every seed's
sample, then a seeded subsample of ``--rows`` (the same rows for every method and seed).

Per seed: the judge zero-shot and with the sample's rows as in-prompt examples (``--shots``), each
with and without calibration; MiniLM-LR and SetFit (``--baselines``) trained on the same rows.
The zero-shot prompt does not depend on the seed, so its scores come from the disk cache after the
first seed. ``--speed N`` first times N texts (disk cache off; N/4 for few-shot without the prefix cache): the shared-prefix KV cache on and
off, zero- and few-shot, in fp32 and bf16.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import pandas as pd

from augment.data import LABEL, TEXT
from augment.files import provenance, write_json_atomic

TASKS = {"2class": {"positive": "pos", "negative": "neg"},
         "3class": {"positive": "pos", "negative": "neg", "neutral": "neutral"}}
VERBALIZERS = {"pos": "positive", "neg": "negative", "neutral": "neutral"}
INSTRUCTION = "Classify the sentiment of this tweet about a US airline. Answer with exactly one of: {labels}."


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="2class")
    parser.add_argument("--data", default="crowdflower", help="A named dataset or a file with CrowdFlower's labels.")
    parser.add_argument("--models", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--examples", type=int, default=10, help="Labelled rows per class (the sample).")
    parser.add_argument("--shots", type=int, default=10, help="Of those, example rows per class in the prompt.")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--modes", default="zero,few", help="Judge variants: zero (zero-shot), few (--shots).")
    parser.add_argument("--rows", type=int, default=500, help="Validation rows scored (a seeded subsample).")
    parser.add_argument("--baselines", default="minilm-lr,setfit")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--speed", type=int, default=0, help="Time this many texts per speed case first (0: skip).")
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--validation-size", type=int, default=2000)
    parser.add_argument("--smoke", action="store_true", help="Small test and validation splits (tests).")
    parser.add_argument("--out", type=Path, required=True)
    return parser.parse_args(argv)


def prepared(args: argparse.Namespace) -> Any:
    """The experiments' data: the same split code, so these validation rows are theirs (never test rows)."""
    from augment.experiment.config import ExperimentConfig
    from augment.experiment.data import prepare

    label_map = TASKS[args.task]
    config = ExperimentConfig(
        data={"path": args.data, "label_map": label_map, "labels": list(label_map.values()), "clean": True,
              "dedup": True},
        test={"size": args.test_size, "seed": 0, "min_rows": min(args.test_size, 1000)},
        validation={"size": args.validation_size, "seed": 1},
        examples_per_class=[args.examples], seeds=seeds(args), augmenters=[{"type": "none"}])
    return next(iter(prepare(config).values()))


def seeds(args: argparse.Namespace) -> list[int]:
    return [int(s) for s in args.seeds.split(",") if s.strip()]


def validation_rows(data: Any, samples: dict[int, pd.DataFrame], rows: int) -> pd.DataFrame:
    drawn = data.validation(pd.concat(samples.values()))
    return drawn.sample(n=min(rows, len(drawn)), random_state=0).reset_index(drop=True)


def judge(model: str, shots: int, seed: int, calibrate: bool, args: argparse.Namespace, **extra: Any) -> Any:
    from classifiers import LLMJudge

    return LLMJudge(model=model, shots=shots, verbalizers=VERBALIZERS, instruction=INSTRUCTION,
                    calibrate=calibrate, batch_size=args.batch_size, precision=args.precision,
                    random_state=seed, **extra)


def methods(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """(name, builder(seed)) for every method; the judge's variants share one scoring pass per prompt."""
    from classifiers import make_classifier

    out: list[tuple[str, Any]] = []
    for model in [m for m in args.models.split(",") if m]:
        for shots in [{"zero": 0, "few": args.shots}[m] for m in args.modes.split(",") if m]:
            for calibrate in (False, True):
                name = f"llm-judge:{model}{f':{shots}' if shots else ''}{':calibrated' if calibrate else ''}"
                out.append((name, lambda seed, m=model, k=shots, c=calibrate: judge(m, k, seed, c, args)))
    for name in [b for b in args.baselines.split(",") if b]:
        out.append((name, lambda seed, n=name: make_classifier(n, seed)))
    return out


def score(rows: pd.DataFrame, sample: pd.DataFrame, name: str, build: Any, seed: int) -> dict[str, Any]:
    from classifiers import evaluate

    start = time.perf_counter()
    model = build(seed).fit(sample[TEXT].tolist(), sample[LABEL].tolist())
    scores = evaluate(model, rows[TEXT].tolist(), rows[LABEL].tolist())
    return {"method": name, "seed": seed, "seconds": round(time.perf_counter() - start, 2), **scores}


def speed(data_rows: pd.DataFrame, sample: pd.DataFrame, model: str, args: argparse.Namespace) -> list[dict]:
    """Seconds per text with the disk cache off: prefix KV cache on/off, zero/few-shot, fp32/bf16. Few-shot
    without the prefix cache recomputes the examples for every text: a quarter of the texts say enough."""
    out = []
    for precision in ("fp32", "bf16"):
        for shots in (0, args.shots):
            for prefix in (True, False):
                texts = data_rows[TEXT].tolist()[:args.speed if prefix or not shots else max(2, args.speed // 4)]
                clf = judge(model, shots, 0, True, args, disk_cache=False, prefix_cache=prefix)
                clf.set_params(precision=precision).fit(sample[TEXT].tolist(), sample[LABEL].tolist())
                clf.label_scores(texts[:2])  # load and warm up
                start = time.perf_counter()
                clf.label_scores(texts)
                took = time.perf_counter() - start
                out.append({"model": model, "precision": precision, "shots": shots, "prefix_cache": prefix,
                            "texts": len(texts), "batch_size": args.batch_size,
                            "prompt_tokens": len(clf._prompt().ids(texts[0])),
                            "seconds": round(took, 2), "ms_per_text": round(1000 * took / len(texts), 1)})
                print(out[-1], flush=True)
    return out


def summary(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by.setdefault(r["method"], []).append(r)
    out = []
    for method, rows in by.items():
        acc, f1 = [r["accuracy"] for r in rows], [r["macro_f1"] for r in rows]
        out.append({"method": method, "seeds": len(rows), "accuracy": round(statistics.mean(acc), 4),
                    "accuracy_sd": round(statistics.pstdev(acc), 4), "macro_f1": round(statistics.mean(f1), 4),
                    "macro_f1_sd": round(statistics.pstdev(f1), 4),
                    "seconds": round(statistics.mean(r["seconds"] for r in rows), 1)})
    return out


def table(report: dict[str, Any]) -> str:
    lines = ["| method | seeds | accuracy | macro-F1 | s per seed |", "|---|---|---|---|---|"]
    for s in report["summary"]:
        lines.append(f"| {s['method']} | {s['seeds']} | {s['accuracy']:.3f} ± {s['accuracy_sd']:.3f} | "
                     f"{s['macro_f1']:.3f} ± {s['macro_f1_sd']:.3f} | {s['seconds']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    data = prepared(args)
    samples = {seed: data.sample(args.examples, seed) for seed in seeds(args)}
    rows = validation_rows(data, samples, args.rows)
    report: dict[str, Any] = {"bench": "judge", "task": args.task, "config": vars(args) | {"out": str(args.out)},
                              "validation_rows": len(rows),
                              "validation_labels": rows[LABEL].value_counts().sort_index().to_dict(),
                              "verbalizers": VERBALIZERS, "instruction": INSTRUCTION}
    first = next(iter(samples.values()))
    report["precision"] = {m: judge(m, 0, 0, True, args)._placement().choice.model_dump(mode="json")
                           for m in args.models.split(",") if m}
    report["speed"] = speed(rows, first, args.models.split(",")[0], args) if args.speed else []
    results = []
    for seed, sample in samples.items():
        for name, build in methods(args):
            results.append(score(rows, sample, name, build, seed))
            print(f"seed {seed} {name}: acc {results[-1]['accuracy']:.3f} macro-F1 {results[-1]['macro_f1']:.3f} "
                  f"({results[-1]['seconds']} s)", flush=True)
    report |= {"results": results, "summary": summary(results), **provenance(vars(args) | {"out": str(args.out)})}
    write_json_atomic(args.out, report)
    print(table(report))
    return report


if __name__ == "__main__":
    main()
