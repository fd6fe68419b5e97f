"""Generation throughput: augment's batched path against what tutorials do.

    python -m benchmarks.generation [--models gpt2-124m,smollm2-135m,tiny,MODEL_DIR] [--rows 64] [--smoke]

Cases, per model, all sampling top-k 50 / top-p 0.95 from a bare separator prompt (EOS,
or the separator a model directory's ``adapt.json`` records), every row ending at it or
at ``--new-tokens``:

- ``pipeline/row`` (baseline): HF ``pipeline("text-generation")`` called once per row;
- ``generate/1 batch`` (baseline): plain ``model.generate`` on all rows as one padded batch;
- ``generate/B-row batches`` (baseline, when ``--rows`` > ``--generate-batch``): the same
  in batches of B rows, as a script that loops over ``generate`` does;
- ``augment`` (fast): ``augment.generate.decode_rows``, the shipped loop (continuous
  batching over a ring KV cache, automatic slot count, counter-based top-k/top-p sampling);
- ``augment no-refill``: the same loop with a batch waiting for its longest row (what
  continuous batching gains).

Random-weight GPT-2 and SmolLM2 from a bare prompt rarely stop early, so refill has
nothing to gain there; a model directory trained on tweets (``augment adapt``) writes
tweet-length rows, which is what generation serves.

Each model's attainable matmul rate is measured in the same run (``torch.mm`` at
2048^3 and at the model's shapes, on the threads in use), and each case reports its
model FLOP utilisation: forward FLOPs per token x tokens/s / that rate.

The per-row pipeline is measured on fewer rows (``--baseline-rows``); rates are per row.
Tokens are the generated text re-tokenized, counted the same way for every case.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import SHAPES, Result, model_dir, run_benchmark, timed

TOP_K, TOP_P = 50, 0.95


def load(shape: str, precision: str = "auto") -> tuple[Any, Any, Any]:
    from augment.models import load_model, load_tokenizer, placement

    path = model_dir(shape)
    place = placement(precision, model=path)
    tokenizer = load_tokenizer(path)
    tokenizer.padding_side = "left"
    separator = _separator(Path(path))
    if separator is not None:  # rows are delimited by it: prompts start with it and generation stops at it
        tokenizer.eos_token = separator
    model = load_model(path, dtype=place.dtype).to(place.device).eval()
    return model, tokenizer, place


def _separator(path: Path) -> str | None:
    from augment.finetune.adapted import read_record

    record = read_record(path)
    return None if record is None else record.separator.token


def sampled_tokens(rows: Any, eos: int) -> int:
    """Tokens each row sampled, its EOS included: counted on the ids, so a random model whose vocabulary
    is wider than its tokenizer's (the Qwen2-1.5B shape) counts the same way as a real one."""
    total = 0
    for row in rows:
        ids = list(row)
        total += ids.index(eos) + 1 if eos in ids else len(ids)
    return total


def pipeline_case(model: Any, tokenizer: Any, place: Any, rows: int, new_tokens: int) -> Callable[[], float]:
    """The tutorial loop: one pipeline call per row."""
    from transformers import pipeline

    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer, device=place.device)

    prompt = len(tokenizer(tokenizer.eos_token)["input_ids"])

    def run() -> float:
        sampled = []
        for _ in range(rows):
            out = pipe(tokenizer.eos_token, do_sample=True, max_new_tokens=new_tokens, top_k=TOP_K, top_p=TOP_P,
                       return_tensors=True, pad_token_id=tokenizer.eos_token_id,
                       eos_token_id=tokenizer.eos_token_id)
            sampled.append(list(out[0]["generated_token_ids"])[prompt:])
        return sampled_tokens(sampled, tokenizer.eos_token_id)
    return run


def one_batch_case(model: Any, tokenizer: Any, place: Any, rows: int, new_tokens: int,
                   batch: int | None = None) -> Callable[[], float]:
    """Plain ``generate``, HF's default sampling chain: every row at once, or ``batch`` rows per call."""
    def run() -> float:
        tokens, left = 0, rows
        while left:
            n = min(left, batch or rows)
            enc = tokenizer([tokenizer.eos_token] * n, return_tensors="pt", padding=True).to(place.device)
            with torch.inference_mode():
                out = model.generate(**enc, do_sample=True, max_new_tokens=new_tokens, top_k=TOP_K, top_p=TOP_P,
                                     pad_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
            tokens += sampled_tokens(out[:, enc["input_ids"].shape[1]:].tolist(), tokenizer.eos_token_id)
            left -= n
        return tokens
    return run


def augment_case(model: Any, tokenizer: Any, place: Any, shape: str, config: Any,
                 refill: bool = True) -> Callable[[], float]:
    """The shipped loop on ``config.n`` rows of one label (every sampled row counts, as in the baselines)."""
    from augment.generate import LabelGenerator, decode_rows, resolve_batch_size

    gen = LabelGenerator(model, tokenizer, place, "bench", False, ["bench"], shape, tokenizer.eos_token_id)
    size = resolve_batch_size(gen, config)

    def run() -> float:
        jobs = [(i, gen.prompt("")) for i in range(config.n)]
        rows = [t + [gen.separator_id] * (len(t) < config.max_new_tokens)   # the loop drops the stop token
                for _, t in decode_rows(gen, config, jobs, size, refill=refill)]
        return sampled_tokens(rows, gen.separator_id)
    return run


def bench_model(shape: str, args: argparse.Namespace) -> list[Result]:
    from augment.config import GenerateConfig
    from augment.generate import LabelGenerator, resolve_batch_size
    from benchmarks.common import forward_flops_per_token, matmul_rate, model_shapes

    model, tokenizer, place = load(shape)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    flops = forward_flops_per_token(model)
    cases: list[tuple[Result, Callable[[], float]]] = []

    def add(case: str, role: str, batch: int, rows: int, fn: Callable[[], float]) -> None:
        dtype = str(place.dtype).split(".")[-1]
        cases.append((Result("generation", case, role, Path(shape).name, params, place.device.type, dtype, batch, 1, 0.0, rows,
                             flops_per_token=flops), fn))

    sizes = args.batch_sizes or ["auto"]
    for size in sizes:
        config = GenerateConfig(n=args.rows, max_new_tokens=args.new_tokens, top_k=TOP_K, top_p=TOP_P,
                                batch_size=size, min_chars=0, seed=0)
        batch = resolve_batch_size(LabelGenerator(model, tokenizer, place, "bench", False, [], shape), config)
        name = "augment" if size == "auto" else f"augment b={size}"
        add(name, "fast", batch, args.rows, augment_case(model, tokenizer, place, shape, config))
        if size == sizes[-1] and not args.no_ablation:
            add(f"{name} no-refill", "fast", batch, args.rows,
                augment_case(model, tokenizer, place, shape, config, refill=False))
    add("generate/1 batch", "baseline", args.rows, args.rows,
        one_batch_case(model, tokenizer, place, args.rows, args.new_tokens))
    if args.rows > args.generate_batch:
        add(f"generate/{args.generate_batch}-row batches", "baseline", args.generate_batch, args.rows,
            one_batch_case(model, tokenizer, place, args.rows, args.new_tokens, args.generate_batch))
    add("pipeline/row", "baseline", 1, args.baseline_rows,
        pipeline_case(model, tokenizer, place, args.baseline_rows, args.new_tokens))
    rates = matmul_rate(model_shapes(model, max(r.batch_size for r, _ in cases)), place.device, place.dtype)
    args.matmul[shape] = rates
    with torch.random.fork_rng():
        torch.manual_seed(0)
        one_batch_case(model, tokenizer, place, 2, 2)()  # warm-up: allocator, thread pool, lazy imports
        for _ in range(args.repeats):  # interleaved, so background load hits every case alike
            for result, fn in cases:
                seconds, tokens, peak = timed(fn, place.device)
                result.seconds.append(seconds)
                result.tokens = tokens  # last repeat; every repeat samples the same number of rows
                result.new_tokens = tokens / result.rows
                result.peak_mb = max(result.peak_mb, peak)
                result.attainable_flops = rates["peak"]
    return [r for r, _ in cases]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.generation", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=None,
                        help=f"comma-separated shapes: {', '.join(SHAPES)} (default gpt2-124m,smollm2-135m,tiny)")
    parser.add_argument("--rows", type=int, default=64, help="rows for the batched cases")
    parser.add_argument("--baseline-rows", type=int, default=6, help="rows for the per-row pipeline")
    parser.add_argument("--generate-batch", type=int, default=64, help="rows per call of the batched generate baseline")
    parser.add_argument("--new-tokens", type=int, default=48, help="max new tokens per row (a tweet)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=None,
                        help="sweep explicit batch sizes instead of 'auto', e.g. 8,16,32,64")
    parser.add_argument("--no-ablation", action="store_true", help="skip the no-refill case")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/generation.json"))
    parser.add_argument("--smoke", action="store_true", help="a few rows (tiny model unless --models): seconds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.models, args.rows, args.baseline_rows, args.new_tokens, args.repeats = args.models or "tiny", 8, 2, 8, 1
    args.models = args.models or "gpt2-124m,smollm2-135m,tiny"
    return args


def main(argv: list[str] | None = None) -> list[Result]:
    return run_benchmark("generation", "generation", parse(argv), bench_model)


if __name__ == "__main__":
    main()
