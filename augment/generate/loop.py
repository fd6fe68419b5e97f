"""The decode loop: slots kept full by refill, and which rank owns which rows.

Continuous batching: every slot of the batch holds one row; when a row ends (at
the run's separator or ``max_new_tokens``) its slot starts the next row at the
next step, prompt token by prompt token, so the batch never waits for its
longest row. Rows depend only on (seed, label, row index) (see ``sampler``), so
rank ``r`` of ``W`` owns row indices ``r, r + W, ...``; the job's rows are the
first ``n`` kept rows in index order, the same for any batch size, world size or
resume point.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from augment.config import GenerateConfig
from augment.distributed import Comm
from augment.errors import AugmentError
from augment.generate.generators import LabelGenerator
from augment.generate.sampler import (has_sliding_layers, keep_rows, num_layers, pick, prefix_cache,
                                     ring_cache, row_key, set_column, slot_masks, step)

Job = tuple[int, list[int]]      # (row index, prompt ids)
Texts = dict[int, str]           # row index -> text


class Slots:
    """Per-slot state of the batch: which row it holds, how much of the prompt it has fed, what it sampled."""

    IDLE = 1 << 60

    def __init__(self, size: int, pad: int):
        self.index = [-1] * size
        self.prompt: list[list[int]] = [[] for _ in range(size)]
        self.fed = [0] * size
        self.out: list[list[int]] = [[] for _ in range(size)]
        self.last = [pad] * size
        self.start = torch.full((size,), self.IDLE, dtype=torch.long)
        self.keys = torch.zeros(size, dtype=torch.long)
        self.shared = torch.zeros(size, dtype=torch.bool)   # the row reads the shared prefix columns

    def begin(self, slot: int, job: Job, now: int, key: int, prefix: int = 0) -> None:
        """``prefix``: the shared prefix's length when the job's prompt starts with it (its tokens are not fed)."""
        self.index[slot], self.prompt[slot] = job[0], job[1][prefix:]
        self.fed[slot], self.out[slot] = 0, []
        self.start[slot], self.keys[slot], self.shared[slot] = now, key, prefix > 0

    def finish(self, slot: int) -> None:
        self.index[slot] = -1
        self.start[slot] = self.IDLE

    def keep(self, slots: list[int]) -> None:
        """Drop every other slot (the batch shrinks; the kept slots renumber in order)."""
        for name in ("index", "prompt", "fed", "out", "last"):
            values = getattr(self, name)
            setattr(self, name, [values[b] for b in slots])
        rows = torch.tensor(slots, dtype=torch.long)
        self.start, self.keys, self.shared = self.start[rows], self.keys[rows], self.shared[rows]

    def active(self) -> list[int]:
        return [b for b, i in enumerate(self.index) if i >= 0]

    def next_tokens(self) -> list[int]:
        """Each slot's input this step: its next prompt token, else its last sampled token."""
        return [p[f] if i >= 0 and f < len(p) else last
                for i, p, f, last in zip(self.index, self.prompt, self.fed, self.last)]


def decode_rows(gen: LabelGenerator, config: GenerateConfig, jobs: Sequence[Job], slots: int,
                refill: bool = True, share_prefix: bool = True) -> Iterator[tuple[int, list[int]]]:
    """(row index, sampled ids before the stop) for every job, in the order rows end.

    ``refill=False`` is the plain batched loop (a batch starts only when all its rows
    ended); it gives the same rows and exists to check the continuous one. The label's
    shared prompt start (``gen.shared_prefix``, instruct mode) is computed once and read
    by every row that starts with it; ``share_prefix=False`` feeds it to each row instead.
    """
    if not jobs:
        return
    gen.activate()
    device = gen.place.device
    queue = collections.deque(jobs)
    share_prefix = share_prefix and not has_sliding_layers(gen.model)   # the window counts ring columns only
    prefix = _usable_prefix(gen.shared_prefix if share_prefix else [], jobs)
    width = config.max_new_tokens + max(len(p) - (len(prefix) if p[:len(prefix)] == prefix else 0) for _, p in jobs)
    state = Slots(min(slots, len(jobs)), gen.separator_id)
    cache = ring_cache(num_layers(gen.model), width, prefix_cache(gen.model, prefix, device) if prefix else None)
    written = torch.full((width,), -1, dtype=torch.long)
    suppressed = gen.suppressed()
    now = 0
    _fill(gen, config, state, queue, range(len(state.index)), now, prefix)
    while state.active():
        column = now % width
        written[column] = now
        set_column(cache, column)
        tokens = torch.tensor(state.next_tokens(), dtype=torch.long)
        positions = (now - state.start).clamp(min=0) + state.shared * len(prefix)
        shared = state.shared[:, None].expand(-1, len(prefix)) if prefix else None
        mask = slot_masks(gen.model, written, state.start, now, shared)
        mask = {k: m.to(device) for k, m in mask.items()} if isinstance(mask, dict) else mask.to(device)
        logits = step(gen.model, cache, tokens.to(device), positions.to(device), mask)
        ended = yield from _advance(gen, config, state, logits, suppressed)
        now += 1
        if refill:
            _fill(gen, config, state, queue, ended, now, prefix)
        elif not state.active():
            _fill(gen, config, state, queue, range(len(state.index)), now, prefix)
        if not queue:
            _shrink(state, cache)


MIN_SHARED_PREFIX = 8   # shorter starts are cheaper fed than computed apart


def _usable_prefix(prefix: list[int], jobs: Sequence[Job]) -> list[int]:
    """The shared prefix, when it is long enough and some prompt starts with it and has a token after it."""
    if len(prefix) < MIN_SHARED_PREFIX or not any(p[:len(prefix)] == prefix and len(p) > len(prefix)
                                                  for _, p in jobs):
        return []
    return prefix


def _shrink(state: Slots, cache: Any) -> None:
    """Once nothing is left to start, idle slots cost a full row of compute each step: drop them
    when a quarter of the batch is idle (copying the KV window of the rest is cheaper than that)."""
    active = state.active()
    if active and len(active) <= len(state.index) * SHRINK_AT:
        state.keep(active)
        keep_rows(cache, torch.tensor(active, dtype=torch.long))


SHRINK_AT = 0.75


def _fill(gen: LabelGenerator, config: GenerateConfig, state: Slots, queue: collections.deque,
          free: Sequence[int], now: int, prefix: list[int]) -> None:
    for slot in free:
        if not queue:
            return
        job = queue.popleft()
        shared = bool(prefix) and job[1][:len(prefix)] == prefix and len(job[1]) > len(prefix)
        state.begin(slot, job, now, row_key(config.seed, gen.label, job[0]), len(prefix) if shared else 0)


def _advance(gen: LabelGenerator, config: GenerateConfig, state: Slots, logits: torch.Tensor,
             suppressed: list[int]) -> Iterator[tuple[int, list[int]]]:
    """Count fed prompt tokens, sample for the slots past their prompt, yield the rows that ended."""
    sampling = []
    for b in state.active():
        if state.fed[b] < len(state.prompt[b]):
            state.fed[b] += 1
        if state.fed[b] == len(state.prompt[b]):
            sampling.append(b)
    ended: list[int] = []
    if not sampling:
        return ended
    stops = gen.stop_ids
    rows = torch.tensor(sampling, dtype=torch.long)
    chosen = logits.float() if len(sampling) == len(state.index) else logits[rows.to(logits.device)].float()
    if suppressed:  # out of place: the logits are inference tensors
        chosen = chosen.index_fill(-1, torch.tensor(suppressed, device=chosen.device), -float("inf"))
    steps = torch.tensor([len(state.out[b]) for b in sampling], dtype=torch.long)
    picked = pick(chosen, state.keys[rows].to(chosen.device), steps.to(chosen.device), config).tolist()
    for b, token in zip(sampling, picked):
        stop = token in stops
        if not stop:
            state.out[b].append(token)
            state.last[b] = token
        if stop or len(state.out[b]) >= config.max_new_tokens:
            yield state.index[b], state.out[b]
            state.finish(b)
            ended.append(b)
    return ended


def auto_batch_size(gen: LabelGenerator, config: GenerateConfig) -> int:
    """Slots that fit comfortably: on a GPU, half the free memory over one slot's KV window
    and vocabulary buffers; on a CPU, ``CPU_BATCH_CAP`` (throughput still grows up to
    there, benchmarks/RESULTS.md), less only when available RAM is short."""
    per_row = _row_bytes(gen.model, config.max_new_tokens + 32)
    if gen.place.device.type != "cuda":
        return max(1, min(CPU_BATCH_CAP, int(_available_ram() * 0.25 // per_row)))
    free, _ = torch.cuda.mem_get_info(gen.place.device)
    return max(1, min(GPU_BATCH_CAP, int(free * 0.5 // per_row)))


CPU_BATCH_CAP = 256
GPU_BATCH_CAP = 4096


def _row_bytes(model: Any, width: int) -> int:
    cfg = model.config
    heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_head", 12)
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", 768)
    head_dim = getattr(cfg, "head_dim", None) or hidden // heads   # Gemma 3 sets it apart from hidden / heads
    itemsize = next(model.parameters()).element_size()
    return 2 * num_layers(model) * head_dim * kv_heads * width * itemsize + cfg.vocab_size * 4 * 6


def _available_ram() -> int:
    """MemAvailable from /proc/meminfo (Linux); 8 GiB where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


def resolve_batch_size(gen: LabelGenerator, config: GenerateConfig) -> int:
    """The configured number of slots, or the automatic one (never more than ``config.n``)."""
    if isinstance(config.batch_size, int):
        return config.batch_size
    return min(auto_batch_size(gen, config), config.n)


def prefix_source(texts: Sequence[str], words: int, seed: int) -> Callable[[int], str]:
    """Row index -> its prompt's prefix: the first ``words`` words of a seeded real row (or nothing)."""
    def prefix(index: int) -> str:
        if words == 0 or not texts:
            return ""
        return " ".join(random.Random(f"{seed}:{index}").choice(texts).split()[:words])
    return prefix


def owned(comm: Comm, lo: int, hi: int) -> list[int]:
    """Row indices in ``[lo, hi)`` that this rank generates: disjoint across ranks, covering all."""
    first = lo + (comm.rank - lo) % comm.world_size
    return list(range(first, hi, comm.world_size))


def too_few_rows(label: str, kept: int, tried: int, config: GenerateConfig,
                 dropped: dict[str, int] | None = None) -> AugmentError:
    if dropped and set(dropped) - {TOO_SHORT}:
        return AugmentError(f"label '{label}': only {kept} of {config.n} rows after {tried} answers "
                            f"({_counted(dropped)} dropped); change the prompt (instruct.system, "
                            "instruct.descriptions) or raise max_attempts")
    return AugmentError(f"label '{label}': only {kept} of {config.n} rows after {tried} tries "
                        f"(rows shorter than min_chars={config.min_chars} are dropped); "
                        "train longer or lower min_chars")


TOO_SHORT = "too short"


def _counted(dropped: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(dropped.items()))


def drop_reason(gen: LabelGenerator, text: str, config: GenerateConfig) -> str | None:
    """Why a sampled text is not a row (a refusal, an empty answer, too short), or None to keep it."""
    answer = gen.answer(text)
    if answer.dropped is not None:
        return answer.dropped
    return TOO_SHORT if len(answer.text) < max(1, config.min_chars) else None


def dropped_before(reasons: dict[int, str | None], last: int) -> dict[str, int]:
    """Texts dropped, by reason, among the indices up to the last kept row: what the rows cost."""
    return dict(collections.Counter(r for i, r in reasons.items() if i <= last and r is not None))


def collect_rows(gen: LabelGenerator, config: GenerateConfig, prompt_texts: Sequence[str], comm: Comm, *,
                 size: int | None = None, cached: Texts | None = None,
                 saved: Callable[[Texts], None] | None = None,
                 on_rows: Callable[[int], None] | None = None,
                 on_dropped: Callable[[dict[str, int]], None] | None = None) -> list[dict[str, Any]]:
    """``config.n`` records for ``gen.label``: the first ``n`` kept rows by index; every rank gets them.

    ``size`` is the number of slots (default: rank 0 resolves it); ``cached`` holds rows an
    earlier job finished, ``saved`` stores new ones as they come, ``on_rows`` hears of them,
    ``on_dropped`` hears how many texts before the last kept row were dropped, by reason.
    Rounds widen the index range until it holds ``n`` kept rows (at most
    ``max_attempts * n`` rows are tried); the result does not depend on the rounds.
    """
    if size is None:
        size = comm.all_gather(resolve_batch_size(gen, config))[0]
    prefix = prefix_source(prompt_texts, config.prefix_words, config.seed)
    texts: Texts = dict(cached or {})
    reasons: dict[int, str | None] = {}
    limit, lo, hi = config.max_attempts * config.n, 0, config.n
    while True:
        mine = _owned_texts(gen, config, owned(comm, lo, hi), texts, prefix, size, saved, on_rows, comm)
        for shard in comm.all_gather(mine):
            texts.update(shard)
        reasons.update((i, drop_reason(gen, texts[i], config)) for i in range(lo, hi))
        kept = [i for i in range(hi) if reasons[i] is None]
        if len(kept) >= config.n:
            if on_dropped:
                on_dropped(dropped_before(reasons, kept[config.n - 1]))
            return [gen.record(texts[i], config) for i in kept[: config.n]]
        if hi >= limit:
            raise too_few_rows(gen.label, len(kept), hi, config, dropped_before(reasons, hi))
        lo, hi = hi, min(limit, hi + _more(config.n - len(kept), hi, len(kept), comm.world_size))


def _more(missing: int, tried: int, kept: int, world: int) -> int:
    """Rows to try next: the missing ones scaled by the keep rate so far, at least one per rank."""
    return max(world, -(-missing * tried // max(kept, 1)))


def _owned_texts(gen: LabelGenerator, config: GenerateConfig, indices: list[int], texts: Texts,
                 prefix: Callable[[int], str], size: int, saved: Callable[[Texts], None] | None,
                 on_rows: Callable[[int], None] | None, comm: Comm) -> Texts:
    """This rank's rows of a round: cached ones as they are, the rest sampled, saved in chunks of ``size``."""
    mine = {i: texts[i] for i in indices if i in texts}
    todo = [i for i in indices if i not in texts]
    jobs = [(i, gen.prompt(prefix(i), i, config.seed)) for i in todo]
    fresh: Texts = {}
    for index, tokens in decode_rows(gen, config, jobs, size):
        fresh[index] = gen.text(prefix(index), tokens)
        if on_rows:
            on_rows(comm.world_size)
        if saved and len(fresh) >= size:
            saved(fresh)
            mine.update(fresh)
            fresh = {}
    if saved and fresh:
        saved(fresh)
    mine.update(fresh)
    return mine
