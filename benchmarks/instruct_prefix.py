"""Does computing the instruct prompt's shared start once pay on this CPU? Same rows, shared vs fed.

    python -m benchmarks.instruct_prefix --run RUN_DIR [--label neg] [--rows 16] [--batch 16] [--new-tokens 32]
                                         [--repeats 2] [--precision fp32] [--out benchmarks/results/instruct-prefix.json]
    python -m benchmarks.instruct_prefix --run RUN_DIR --parts [--batch 20] [--new-tokens 8]   # the trade, cheaply

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


def measure_parts(run_dir: Path, label: str, batch: int, steps: int, precision: str) -> dict[str, object]:
    """The trade itself, cheaply: one forward over the shared start against the decode steps it saves.

    A decode step costs about the same whatever token a slot feeds, so feeding the start to a batch of
    ``batch`` rows costs ``P`` steps of that batch; sharing it costs one ``P``-token forward.
    """
    import augment.generate.loop as loop
    from augment.config import GenerateConfig
    from augment.generate import LabelGenerator
    from augment.generate.sampler import prefix_cache
    from augment.rundir import RunDir

    gen = LabelGenerator.load(RunDir(run_dir), label, precision)
    prefix = gen.shared_prefix
    forward = []
    for _ in range(3):
        start = time.perf_counter()
        prefix_cache(gen.model, prefix, gen.place.device)
        forward.append(time.perf_counter() - start)
    count = [0]
    real = loop.step
    loop.step = lambda *args: count.__setitem__(0, count[0] + 1) or real(*args)
    config = GenerateConfig(max_new_tokens=steps, top_k=0, top_p=None, seed=0)
    jobs = [(i, [gen.separator_id]) for i in range(batch)]
    start = time.perf_counter()
    list(loop.decode_rows(gen, config, jobs, batch, share_prefix=False))
    elapsed = time.perf_counter() - start
    loop.step = real
    step_s = elapsed / count[0]
    rows = [gen.prompt("", i, 0) for i in range(batch)]
    fed = statistics.mean(len(p) for p in rows)
    return {"run": str(run_dir), "label": label, "batch": batch, "precision": gen.place.choice.precision,
            "shared_prefix_tokens": len(prefix), "prompt_tokens_mean": fed,
            "prefix_forward_s": round(statistics.median(forward), 3), "decode_step_s": round(step_s, 3),
            "decode_steps_timed": count[0],
            "fed_prefix_cost_s": round(len(prefix) * step_s, 2),
            "saving_per_batch_s": round(len(prefix) * step_s - statistics.median(forward), 2),
            "steps_saved_share": round(len(prefix) / (fed + 24), 3)}


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instruct_prefix")
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--label", default="neg")
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--parts", action="store_true", help="time one prefix forward against decode steps only")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/instruct-prefix.json"))
    args = parser.parse_args(argv)
    if args.parts:
        result = measure_parts(args.run, args.label, args.batch, args.new_tokens, args.precision)
    else:
        result = measure(args.run, args.label, args.rows, args.batch, args.new_tokens, args.repeats, args.precision)
    from augment.files import provenance

    result["provenance"] = provenance(None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "provenance"}, indent=2))
    return result


if __name__ == "__main__":
    main()
