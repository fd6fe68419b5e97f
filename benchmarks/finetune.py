"""Fine-tuning throughput: augment's packed blocks against the tutorial padded-row Trainer.

    python -m benchmarks.finetune [--models gpt2-124m,smollm2-135m,tiny] [--steps 6] [--smoke]

Both cases use the same ``TrainingArguments`` (augment's ``training_arguments``:
batch 8, same optimizer and precision) and the same tweets; only the data differs:

- ``augment packed`` (fast): rows + EOS packed into 128-token blocks (``augment.finetune.packing``);
- ``padded rows`` (baseline): the typical tutorial: every row padded to the longest row,
  ``DataCollatorForLanguageModeling(mlm=False)`` (which, with pad == EOS, also masks EOS).

Per-step wall times come from a callback; the first step (warm-up) is dropped and
the median of the rest is used. rows/s = rows per step / median step time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from benchmarks.common import (SHAPES, Result, forward_flops_per_token, matmul_rate, model_dir, model_shapes,
                               peak_memory_mb, reset_peak_memory, run_benchmark, tweet_rows)


class StepTimer(TrainerCallback):
    """Records the wall time of every optimizer step."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._start = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.times.append(time.perf_counter() - self._start)


def packed_data(tokenizer: Any, rows: list[str], block: int) -> tuple[Any, Any, float, float]:
    """Dataset, collator, rows per block, real tokens per block."""
    from augment.finetune.packing import BlockDataset, PadCollator, TrainingRow, pack, tokenize_rows

    blocks = pack(tokenize_rows(tokenizer, [TrainingRow(r) for r in rows]), tokenizer.eos_token_id, block)
    tokens = sum(len(b) for b in blocks)
    return BlockDataset(blocks), PadCollator(tokenizer.pad_token_id), len(rows) / len(blocks), tokens / len(blocks)


def padded_data(tokenizer: Any, rows: list[str], block: int) -> tuple[Any, Any, float, float]:
    """The tutorial: ``tokenizer(..., padding="longest", truncation=True)`` over all rows + the LM collator."""
    from transformers import DataCollatorForLanguageModeling

    enc = tokenizer(rows, padding="longest", truncation=True, max_length=block)
    data = [{"input_ids": i, "attention_mask": m} for i, m in zip(enc["input_ids"], enc["attention_mask"])]
    real = sum(sum(m) for m in enc["attention_mask"]) / len(rows)
    return data, DataCollatorForLanguageModeling(tokenizer, mlm=False), 1.0, real


def run_case(shape: str, case: str, rows: list[str], args: argparse.Namespace) -> Result:
    from transformers import Trainer
    from transformers.trainer_callback import PrinterCallback

    from augment.config import FinetuneConfig
    from augment.finetune.torch_backend import training_arguments
    from augment.models import load_model, load_tokenizer, placement

    path = model_dir(shape)
    config = FinetuneConfig(model=path, max_steps=args.steps, batch_size=args.batch_size, block_size=args.block,
                            save_steps=10**6, precision="auto")
    tokenizer = load_tokenizer(path)
    model = load_model(path)
    make = packed_data if case == "augment packed" else padded_data
    data, collator, rows_per_item, tokens_per_item = make(tokenizer, rows, args.block)
    timer = StepTimer()
    place = placement(config.precision, model=path)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model=model, args=training_arguments(config, Path(tmp), progress=False, place=place),
                          data_collator=collator, train_dataset=data, callbacks=[timer])
        trainer.remove_callback(PrinterCallback)
        reset_peak_memory(place.device)
        trainer.train()
        peak = peak_memory_mb(place.device)
    width = len(data[0]["input_ids"])
    result = Result("finetune", case, "fast" if case == "augment packed" else "baseline", shape,
                    sum(p.numel() for p in model.parameters()) / 1e6, place.device.type,
                    str(place.dtype).split(".")[-1], args.batch_size, width, tokens_per_item / rows_per_item,
                    rows_per_item * args.batch_size, seconds=timer.times[1:] or timer.times,
                    tokens=tokens_per_item * args.batch_size, peak_mb=peak,
                    flops_per_token=3 * forward_flops_per_token(model))  # forward + backward (2x)
    return result


def bench_model(shape: str, args: argparse.Namespace) -> list[Result]:
    rows, source = tweet_rows(args.rows, seed=0)
    args.data = source
    results: dict[str, Result] = {}
    rates = attainable(shape, args)
    for _ in range(args.repeats):  # interleaved repeats; the step times of all repeats are pooled
        for case in ("augment packed", "padded rows"):
            result = run_case(shape, case, rows, args)
            if case in results:
                results[case].seconds.extend(result.seconds)
                results[case].peak_mb = max(results[case].peak_mb, result.peak_mb)
            else:
                results[case] = result
            results[case].attainable_flops = rates["peak"]
    return list(results.values())


def attainable(shape: str, args: argparse.Namespace) -> dict[str, float]:
    """The machine's matmul rate at the training shapes (batch x block rows), in this run."""
    from augment.models import load_model, placement

    path = model_dir(shape)
    place = placement("auto", model=path)  # the format the cases train in
    model = load_model(path)
    rates = matmul_rate(model_shapes(model, args.batch_size * args.block), place.device, place.dtype)
    args.matmul[shape] = rates
    return rates


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.finetune", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="gpt2-124m,smollm2-135m,tiny",
                        help=f"comma-separated shapes: {', '.join(SHAPES)}")
    parser.add_argument("--rows", type=int, default=2000, help="tweets the data comes from")
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per case (first is warm-up)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--block", type=int, default=128, help="packed block / truncation length")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/finetune.json"))
    parser.add_argument("--smoke", action="store_true", help="tiny model, a few steps: seconds")
    args = parser.parse_args(argv)
    if args.smoke:
        args.models, args.rows, args.steps, args.repeats = "tiny", 64, 3, 1
    return args


def main(argv: list[str] | None = None) -> list[Result]:
    title = "fine-tuning (per optimizer step; rows/s = rows per step / median step time)"
    return run_benchmark("finetune", title, parse(argv), bench_model)


if __name__ == "__main__":
    main()
