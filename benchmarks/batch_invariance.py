"""Do rows change with the batch size in practice? Same seed, slot counts 8 / 64 / all, refill or not.

    python -m benchmarks.batch_invariance [--models smollm2-135m,gpt2-124m,tiny] [--rows 64] [--new-tokens 32]
                                          [--precision auto|fp32|bf16]

The sampler guarantees identical rows for identical logits; fp32 logits computed in
batches of different sizes can differ in the last bits, which flips a token only at a
near-tie. bf16 logits differ more often (attention sums a row's keys in ring-column
order, which depends on when the row started). This counts how many rows differ from the
8-slot run, and whether a second 8-slot run repeats it exactly (JSON to ``--out``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.generation import load


def check(shape: str, rows: int, new_tokens: int, precision: str = "auto") -> dict[str, object]:
    from augment.config import GenerateConfig
    from augment.generate import LabelGenerator, decode_rows

    model, tokenizer, place = load(shape, precision)
    gen = LabelGenerator(model, tokenizer, place, "bench", False, ["bench"], shape)
    config = GenerateConfig(n=rows, max_new_tokens=new_tokens, seed=1)
    jobs = [(i, gen.prompt("")) for i in range(rows)]
    runs = {f"slots={s}{'' if refill else ' no-refill'}": dict(decode_rows(gen, config, jobs, s, refill))
            for s, refill in ((8, True), (64, True), (rows, False), (rows, True))}
    reference = runs["slots=8"]
    runs["slots=8 again"] = dict(decode_rows(gen, config, jobs, 8))
    return {"model": shape, "rows": rows, "new_tokens": new_tokens, "precision": place.choice.precision,
            "why": place.choice.reason,
            "differing_rows": {name: sum(r[i] != reference[i] for i in reference) for name, r in runs.items()},
            "mean_tokens": sum(map(len, reference.values())) / rows}


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batch_invariance")
    parser.add_argument("--models", default="smollm2-135m,gpt2-124m,tiny")
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--precision", default="auto", help="auto, fp32 or bf16")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/batch_invariance.json"))
    args = parser.parse_args(argv)
    results = [check(m.strip(), args.rows, args.new_tokens, args.precision) for m in args.models.split(",")]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
