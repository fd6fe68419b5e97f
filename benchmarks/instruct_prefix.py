"""Does computing the instruct prompt's shared start once pay on this CPU? Same rows, shared vs fed.

    python -m benchmarks.instruct_prefix --run RUN_DIR [--label neg] [--rows 16] [--batch 16] [--new-tokens 32]
                                         [--repeats 2] [--precision fp32] [--out benchmarks/results/instruct-prefix.json]

``RUN_DIR`` is an instruct run (``augment finetune --mode instruct``). Both ways decode the
same jobs with the same slots, interleaved repeat by repeat so background load hits both
alike; the shared way computes the chat's common start (system message and request up to
the first example) in one forward and every row reads it, the fed way feeds it to every row
one token per step as any other prompt token. Reports wall seconds (median), decode steps,
prompt tokens per row, and whether the rows are the same.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def measure(run_dir: Path, label: str, rows: int, batch: int, new_tokens: int, repeats: int,
            precision: str) -> dict[str, object]:
    import augment.generate.loop as loop
    from augment.config import GenerateConfig
    from augment.generate import LabelGenerator
    from augment.rundir import RunDir

    began = time.perf_counter()
    gen = LabelGenerator.load(RunDir(run_dir), label, precision)
    load_s = time.perf_counter() - began
    config = GenerateConfig(n=rows, max_new_tokens=new_tokens, seed=0)
    jobs = [(i, gen.prompt("", i, config.seed)) for i in range(rows)]
    steps = {True: 0, False: 0}
    real = loop.step

    def counted(share: bool):
        def step(*args):
            steps[share] += 1
            return real(*args)
        return step

    seconds: dict[bool, list[float]] = {True: [], False: []}
    texts: dict[bool, dict[int, str]] = {}
    for _ in range(repeats):
        for share in (True, False):
            loop.step, steps[share] = counted(share), 0
            start = time.perf_counter()
            out = dict(loop.decode_rows(gen, config, jobs, batch, share_prefix=share))
            seconds[share].append(round(time.perf_counter() - start, 2))
            texts[share] = {i: gen.tokenizer.decode(t) for i, t in out.items()}
    loop.step = real
    shared_s, fed_s = statistics.median(seconds[True]), statistics.median(seconds[False])
    return {"run": str(run_dir), "label": label, "rows": rows, "batch": batch, "new_tokens": new_tokens,
            "precision": gen.place.choice.precision, "load_s": round(load_s, 1),
            "prompt_tokens_mean": sum(len(p) for _, p in jobs) / rows, "shared_prefix_tokens": len(gen.shared_prefix),
            "new_tokens_mean": sum(len(gen.tokenizer(t)["input_ids"]) for t in texts[True].values()) / rows,
            "seconds": {"shared": seconds[True], "fed": seconds[False]},
            "steps": {"shared": steps[True], "fed": steps[False]},
            "speedup": round(fed_s / shared_s, 2), "same_rows": texts[True] == texts[False],
            "differing_rows": sum(texts[True][i] != texts[False][i] for i in texts[True])}


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instruct_prefix")
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--label", default="neg")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/instruct-prefix.json"))
    args = parser.parse_args(argv)
    result = measure(args.run, args.label, args.rows, args.batch, args.new_tokens, args.repeats, args.precision)
    from augment.files import provenance

    result["provenance"] = provenance(None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "provenance"}, indent=2))
    return result


if __name__ == "__main__":
    main()
