"""fp32 against bf16 on this machine's CPU: generation, full fine-tuning and LoRA, each against its own peak.

    python -m benchmarks.precision [--models smollm2-135m,qwen2.5-coder-0.5b-instruct,...] [--smoke]

Per model and format, in one process:

- ``augment`` (fast): the shipped loop (``decode_rows``, ``--slots`` slots) on ``--rows`` rows from a
  bare separator prompt, up to ``--new-tokens`` each; ``generate/1 batch`` (baseline): one HF
  ``generate`` call on the same rows in the same format;
- ``full fine-tune``: augment's ``training_arguments`` (bf16 = autocast over fp32 weights and AdamW
  state) on packed CrowdFlower tweets, ``--train-batch`` blocks of ``--block`` tokens per step;
  skipped for models whose fp32 AdamW state would not fit (``--full-max-params``);
- ``LoRA``: peft adapters (rank 16, every linear layer) over a frozen base held in the format
  (fp32 adapters, autocast in bf16), the same steps and data.

Every case runs ``--repeats`` times, the formats alternating, and reports the best repeat
(training: the best of each run's median step): on a machine shared with other jobs, load
only ever slows a case down. All repeats are kept in the JSON (``all_seconds``). The held-out
loss is the same in every repeat (same seed).

Each training case reports tokens/s (median step, the first dropped) and the held-out loss of
the same held-out blocks after the same steps, so a format that trains faster but worse shows it.
MFU divides FLOPs/s (forward 2 x weights per token; full training 3 x that; LoRA 2 x, since the
frozen base needs gradients for its inputs but none for its weights, and the rank-16 adapters
are under 2% of the work) by the best ``torch.mm`` rate measured in the same run *in the same
format*: each format against its own peak. The machine's processor and its
matrix units (``/proc/cpuinfo``) are printed and written into the JSON.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import (Result, forward_flops_per_token, matmul_rate, model_shapes, peak_memory_mb,
                               reset_peak_memory, timed, tweet_rows)

FORMATS = {"fp32": torch.float32, "bf16": torch.bfloat16}
TOP_K, TOP_P = 50, 0.95


def model_path(name: str) -> str:
    from augment.models import resolve_model

    return name if Path(name).is_dir() else resolve_model(name)


def generation_cases(path: str, fmt: str, args: argparse.Namespace) -> list[tuple[Result, Callable[[], float]]]:
    from augment.config import GenerateConfig
    from augment.generate import LabelGenerator, decode_rows
    from augment.models import load_model, load_tokenizer, placement

    place = placement(fmt, "cpu")
    tokenizer = load_tokenizer(path)
    tokenizer.padding_side = "left"
    model = load_model(path, dtype=place.dtype).eval()
    gen = LabelGenerator(model, tokenizer, place, "bench", False, ["bench"], Path(path).name, tokenizer.eos_token_id)
    config = GenerateConfig(n=args.rows, max_new_tokens=args.new_tokens, top_k=TOP_K, top_p=TOP_P,
                            batch_size=args.slots, min_chars=0, seed=0)

    def ours() -> float:
        jobs = [(i, gen.prompt("")) for i in range(args.rows)]
        return float(sum(len(t) for _, t in decode_rows(gen, config, jobs, args.slots)))

    def hf() -> float:
        enc = tokenizer([tokenizer.eos_token] * args.rows, return_tensors="pt", padding=True)
        with torch.inference_mode():
            out = model.generate(**enc, do_sample=True, max_new_tokens=args.new_tokens, top_k=TOP_K, top_p=TOP_P,
                                 pad_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
        new = out[:, enc["input_ids"].shape[1]:]
        return float(sum(_until_eos(row.tolist(), tokenizer.eos_token_id) for row in new))

    params = sum(p.numel() for p in model.parameters()) / 1e6
    flops = forward_flops_per_token(model)
    peak = matmul_rate(model_shapes(model, args.slots), place.device, place.dtype)["peak"]
    args.matmul[f"{Path(path).name}/{fmt}"] = peak

    def result(case: str, role: str, batch: int) -> Result:
        return Result("precision", case, role, Path(path).name, params, "cpu", fmt, batch, 1, 0.0, args.rows,
                      flops_per_token=flops, attainable_flops=peak)
    return [(result("augment", "fast", args.slots), ours), (result("generate/1 batch", "baseline", args.rows), hf)]


def _until_eos(tokens: list[int], eos: int) -> int:
    return tokens.index(eos) if eos in tokens else len(tokens)


def run_generation(path: str, args: argparse.Namespace) -> list[Result]:
    """Both formats' cases interleaved repeat by repeat, so load on the machine hits each alike."""
    cases = [c for fmt in args.formats for c in generation_cases(path, fmt, args)]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for _ in range(args.repeats):
            for result, fn in cases:
                seconds, tokens, peak = timed(fn, torch.device("cpu"))
                result.seconds.append(seconds)
                result.tokens, result.new_tokens = tokens, tokens / result.rows
                result.peak_mb = max(result.peak_mb, peak)
    out = [r for r, _ in cases]
    del cases
    gc.collect()
    return out


def training_data(path: str, args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from augment.finetune.packing import BlockDataset, PadCollator, TrainingRow, pack, tokenize_rows
    from augment.models import load_tokenizer

    tokenizer = load_tokenizer(path)
    rows, _ = tweet_rows(args.train_batch * args.block * (args.steps + 4) // 20 + 200, seed=1)
    blocks = pack(tokenize_rows(tokenizer, [TrainingRow(r) for r in rows]), tokenizer.eos_token_id, args.block)
    held = max(4, len(blocks) // 10)
    return BlockDataset(blocks[held:]), BlockDataset(blocks[:held]), PadCollator(tokenizer.pad_token_id)


def train_case(path: str, fmt: str, lora: bool, args: argparse.Namespace) -> Result:
    from transformers import Trainer
    from transformers.trainer_callback import PrinterCallback

    from augment.config import FinetuneConfig
    from augment.finetune.torch_backend import training_arguments
    from augment.models import load_model, placement
    from benchmarks.finetune import StepTimer

    place = placement(fmt, "cpu")
    train, held, collator = training_data(path, args)
    reset_peak_memory(place.device)
    # LoRA freezes the base: holding it in the format saves the per-step cast; full fine-tuning keeps fp32 masters
    model = load_model(path, dtype=place.dtype if lora else torch.float32)
    flops = forward_flops_per_token(model)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                                                 task_type="CAUSAL_LM"))
    config = FinetuneConfig(model=path, max_steps=args.steps, batch_size=args.train_batch, block_size=args.block,
                            learning_rate=2e-4 if lora else 5e-5, precision=fmt, save_steps=10 ** 6, seed=0)
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model=model, args=training_arguments(config, Path(tmp), False, place),
                          data_collator=collator, train_dataset=train, eval_dataset=held, callbacks=[timer])
        trainer.remove_callback(PrinterCallback)
        trainer.train()
        held_out = trainer.evaluate()["eval_loss"]
    step = statistics.median(timer.times[1:] or timer.times)
    tokens = args.train_batch * args.block
    result = Result("precision", "LoRA r16" if lora else "full fine-tune", "train", Path(path).name, params, "cpu",
                    fmt, args.train_batch, 0.0, 0.0, args.train_batch, seconds=[step], tokens=tokens,
                    peak_mb=peak_memory_mb(place.device), flops_per_token=(2 if lora else 3) * flops,
                    attainable_flops=args.matmul.get(f"{Path(path).name}/{fmt}", 0.0))
    result.held_out_loss = held_out  # type: ignore[attr-defined]
    del trainer, model
    gc.collect()
    return result


def bench_model(name: str, args: argparse.Namespace) -> list[Result]:
    """Training cases alternate format repeat by repeat, like generation, so load hits both alike."""
    path = model_path(name)
    results = run_generation(path, args)
    params = results[0].params_m * 1e6
    trained: dict[tuple[bool, str], Result] = {}
    for _ in range(args.repeats):
        for lora in (False, True):
            if not lora and params > args.full_max_params:
                continue
            for fmt in args.formats:
                result = train_case(path, fmt, lora, args)
                if (lora, fmt) in trained:
                    trained[(lora, fmt)].seconds += result.seconds
                    trained[(lora, fmt)].peak_mb = max(trained[(lora, fmt)].peak_mb, result.peak_mb)
                else:
                    trained[(lora, fmt)] = result
    return results + list(trained.values())


def best_of(result: Result) -> Result:
    result.all_seconds = list(result.seconds)  # type: ignore[attr-defined]
    result.seconds = [min(result.seconds)]
    return result


def format_ratios(results: list[Result]) -> list[dict[str, Any]]:
    """bf16 / fp32 per (model, case), and the shipped loop / one generate batch per format."""
    out = []
    by = {(r.model, r.case, r.dtype): r for r in results}
    for (model, case, dtype), r in by.items():
        if dtype == "bf16" and (model, case, "fp32") in by:
            out.append({"model": model, "case": f"{case} bf16 / fp32", "fast": "bf16", "baseline": "fp32",
                        "ratio": r.tokens_per_s / by[(model, case, "fp32")].tokens_per_s})
        if case == "augment" and (model, "generate/1 batch", dtype) in by:
            out.append({"model": model, "case": f"augment / generate ({dtype})", "fast": "augment",
                        "baseline": "generate/1 batch",
                        "ratio": r.tokens_per_s / by[(model, "generate/1 batch", dtype)].tokens_per_s})
    return out


def print_tables(results: list[Result], ratios: list[dict[str, Any]], machine: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=170)
    console.print(f"processor: {machine['processor']}; units: {', '.join(machine['units']) or 'none listed'}; "
                  f"threads {machine['threads']}")
    table = Table(title="fp32 vs bf16 (CPU)")
    for col in ("model", "case", "dtype", "batch", "new tok/row", "median s", "tokens/s", "MFU", "peak of dtype",
                "held-out loss", "peak MB"):
        table.add_column(col, justify="left" if col in ("model", "case") else "right")
    for r in results:
        held = getattr(r, "held_out_loss", None)
        table.add_row(r.model, r.case, r.dtype, str(r.batch_size), f"{r.new_tokens:.1f}", f"{r.median_s:.2f}",
                      f"{r.tokens_per_s:.1f}", f"{100 * r.mfu:.1f}%", f"{r.attainable_flops / 1e9:.0f} GFLOP/s",
                      "-" if held is None else f"{held:.4f}", f"{r.peak_mb:.0f}")
    console.print(table)
    ratio_table = Table(title="ratios (tokens/s)")
    for col in ("model", "case", "ratio"):
        ratio_table.add_column(col)
    for c in ratios:
        ratio_table.add_row(c["model"], c["case"], f"{c['ratio']:.2f}x")
    console.print(ratio_table)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2-135m,qwen2.5-coder-0.5b-instruct,qwen2.5-coder-1.5b-instruct",
                        help="short names or model directories, comma-separated")
    parser.add_argument("--formats", default="fp32,bf16", type=lambda s: s.split(","))
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--slots", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6, help="training steps per case (the first is dropped)")
    parser.add_argument("--train-batch", type=int, default=4)
    parser.add_argument("--block", type=int, default=64)
    parser.add_argument("--full-max-params", type=float, default=1e9,
                        help="skip full fine-tuning above this many parameters (fp32 AdamW needs 16 bytes each)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/precision.json"))
    parser.add_argument("--smoke", action="store_true", help="tiny model, a few rows and steps: seconds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.models, args.rows, args.slots, args.new_tokens, args.repeats, args.steps = "tiny-gpt2", 4, 2, 4, 1, 2
    return args


def main(argv: list[str] | None = None) -> list[Result]:
    from augment.files import provenance, write_json_atomic
    from augment.precision import cpu_units, processor_name

    args = parse(argv)
    args.matmul = {}
    machine = {"processor": processor_name(), "units": cpu_units(), "threads": torch.get_num_threads()}
    results: list[Result] = []
    for name in args.models.split(","):
        results += [best_of(r) for r in bench_model(name.strip(), args)]
        ratios = format_ratios(results)
        records = [{**r.record(), "held_out_loss": getattr(r, "held_out_loss", None),
                    "all_seconds": getattr(r, "all_seconds", r.seconds)} for r in results]
        settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "matmul"}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.out, provenance(settings, bench="precision", machine=machine, results=records,
                                               ratios=ratios, peaks=args.matmul))
    print_tables(results, format_ratios(results), machine)
    return results


if __name__ == "__main__":
    main()
