"""An instruct causal LM as a zero- or few-shot classifier: ``llm-judge:MODEL`` or ``llm-judge:MODEL:K``.

Each label is scored by the log-probability of its whole answer (the label's
verbalizer, then the end of the assistant turn) after a chat prompt: a system
instruction naming the answers, in few-shot mode K rows per label as user and
assistant turns, then the text. Scoring the answer up to the end of the turn
lets multi-token labels compete fairly and keeps "neg" from winning as a prefix
of "negative".

The probabilities are the softmax of those scores. Calibration (Zhao et al. 2021,
"Calibrate Before Use": the same prompt with content-free texts "N/A", "", "[MASK]"
measures what the prompt alone prefers; that is divided out and the label prior
of the ``fit`` rows applied) is there on request: on CrowdFlower's validation rows
it lost in 6 of 8 settings (two Qwen sizes, zero- and 10-shot, 2 and 3 classes),
by up to 31 points, and won in one (benchmarks/RESULTS.md, "The LLM judge").

Cost on a CPU: the shared part of the prompt (instruction and examples) runs once
per ``predict`` as a KV cache every batch reuses, and each text's tokens and all
its answers go through the model in one pass (a 4D mask keeps the answers apart,
and the vocabulary projection runs only at the positions scored). Raw scores are
stored on disk per (model, prompt, text), so a grid scores each text once.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from augment.cache import cache_root
from augment.errors import AugmentError, ConfigError
from augment.files import hash_dir, hash_json, read_json, read_jsonl, write_json_atomic, write_jsonl_atomic
from classifiers.base import as_texts

log = logging.getLogger(__name__)

JUDGE_VERSION = "judge-1"  # the scoring rule: goes into every cached score's key
CONTENT_FREE = ("N/A", "", "[MASK]")
CHUNK_BATCHES = 16  # batches scored between two writes of the disk cache
DEFAULT_INSTRUCTION = "Classify the text. Answer with exactly one of: {labels}."
# For base LMs, only when asked for (``plain_prompt=True``): the same turns as plain text.
PLAIN_TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}\n\n"
                  "{% elif m['role'] == 'user' %}Text: {{ m['content'] }}\nAnswer:"
                  "{% else %} {{ m['content'] }}{{ eos_token }}\n\n{% endif %}{% endfor %}")


class LLMJudge(ClassifierMixin, BaseEstimator):
    """scikit-learn classifier over raw strings: an instruct LM answering with a label.

    ``model``: a short name (``augment fetch``), an HF id or a local model dir.
    ``shots``: example rows per label put in the prompt (0: zero-shot), a seeded
    choice (``random_state``) of the rows ``fit`` gets. ``verbalizers``: the words
    the model answers for a label (``{"pos": "positive"}``); default the label.
    ``instruction``: the system prompt; ``{labels}`` becomes the answers.
    ``calibrate`` (off by default: it lost on validation): divide out the content-free scores, apply the prior
    (``class_weight="balanced"``: a uniform prior; None: the labels' share in
    ``fit``). ``prefix_cache``: run the shared prompt once per call and reuse its
    KV cache. ``disk_cache``: keep raw scores under ``$AUGMENT_CACHE/judge``.
    ``plain_prompt``: score a base LM (no chat template) with "Text: ... Answer:" turns; off, such a
    model is refused, since a base LM's answers after a chat prompt are guesses a user would not want.
    """

    def __init__(self, model: str = "qwen2.5-coder-0.5b-instruct", shots: int = 0,
                 verbalizers: dict[str, str] | None = None, instruction: str = DEFAULT_INSTRUCTION,
                 calibrate: bool = False, content_free: Sequence[str] = CONTENT_FREE,
                 class_weight: str | None = None, batch_size: int = 16, prefix_cache: bool = True,
                 precision: str = "auto", device: str | None = None, disk_cache: bool = True,
                 random_state: int | None = None, plain_prompt: bool = False):
        self.model = model
        self.shots = shots
        self.verbalizers = verbalizers
        self.instruction = instruction
        self.calibrate = calibrate
        self.content_free = content_free
        self.class_weight = class_weight
        self.batch_size = batch_size
        self.prefix_cache = prefix_cache
        self.precision = precision
        self.device = device
        self.disk_cache = disk_cache
        self.random_state = random_state
        self.plain_prompt = plain_prompt

    def fit(self, X: Any, y: Any) -> "LLMJudge":
        """Records the labels, their prior and the prompt's example rows; no model runs here."""
        texts, labels = as_texts(X), np.asarray(y)
        if len(texts) != len(labels):
            raise ConfigError(f"llm judge: {len(texts)} texts but {len(labels)} labels")
        self.classes_, counts = np.unique(labels, return_counts=True)
        if len(self.classes_) < 2:
            raise ConfigError(f"llm judge: needs at least 2 labels, got {[str(c) for c in self.classes_]}")
        self.prior_ = counts / counts.sum()
        self.answers_ = answers(self.classes_, self.verbalizers)
        self.examples_ = few_shot_examples(texts, labels, self.classes_, self.shots, self.random_state)
        if not self.plain_prompt:
            require_chat_template(cached_tokenizer(self._model_dir()), self.model)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        texts = as_texts(X)
        if not texts:
            return np.zeros((0, len(self.classes_)))
        free = list(self.content_free) if self.calibrate else []
        scores = self.label_scores(texts + free)
        return calibrated(scores[:len(texts)], scores[len(texts):], self._prior() if self.calibrate else None)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def label_scores(self, texts: list[str]) -> np.ndarray:
        """Raw log-probability of each label's answer after each text's prompt [texts, labels]."""
        prompt = self._prompt()
        store = ScoreStore.open(self._model_dir(), prompt, self._placement()) if self.disk_cache else None
        known = store.read() if store is not None else {}
        missing = [t for t in dict.fromkeys(texts) if text_key(t) not in known]
        chunk = max(1, self.batch_size) * CHUNK_BATCHES
        for start in range(0, len(missing), chunk):  # saved chunk by chunk: a killed run keeps what it scored
            todo = missing[start:start + chunk]
            fresh = score_texts(self._loaded(), prompt, todo, self.batch_size, self.prefix_cache)
            new = {text_key(t): row.tolist() for t, row in zip(todo, fresh)}
            if store is not None:
                store.write(new)
            known = {**known, **new}
        return np.array([known[text_key(t)] for t in texts], dtype=float)

    def _prior(self) -> np.ndarray:
        if self.class_weight is None:
            return self.prior_
        if self.class_weight == "balanced":
            return np.full(len(self.classes_), 1.0 / len(self.classes_))
        raise ConfigError(f"llm judge: class_weight {self.class_weight!r}; expected None or 'balanced'")

    def _model_dir(self) -> str:
        from augment.models import resolve_model

        return resolve_model(self.model)

    def _placement(self) -> Any:
        from augment.models import placement

        return placement(self.precision, self.device, model=self._model_dir())

    def _prompt(self) -> "JudgePrompt":
        return JudgePrompt.build(cached_tokenizer(self._model_dir()), self.instruction, self.answers_, self.examples_)

    def _loaded(self) -> Any:
        where = self._placement()
        return cached_model(self._model_dir(), str(where.dtype).removeprefix("torch."), str(where.device))


def answers(classes: np.ndarray, verbalizers: dict[str, str] | None) -> list[str]:
    """The answer of each class, in ``classes`` order (labels the mapping does not name answer with
    themselves; names of absent labels are ignored, so one mapping serves a 2- and a 3-class task);
    distinct, or the model could not tell them apart."""
    given = {str(k): str(v) for k, v in (verbalizers or {}).items()}
    out = [given.get(str(c), str(c)) for c in classes]
    if len(set(out)) != len(out) or any(not a.strip() for a in out):
        raise ConfigError(f"llm judge: label answers must be distinct and non-empty, got {out}")
    return out


def few_shot_examples(texts: list[str], labels: np.ndarray, classes: np.ndarray, shots: int,
                      seed: int | None) -> list[tuple[str, int]]:
    """Up to ``shots`` rows per label, a seeded choice, interleaved in a seeded order (not grouped by
    label: the last label shown would be favoured). Each as (text, index of its class)."""
    if shots <= 0:
        return []
    rng = np.random.default_rng(seed)
    chosen: list[tuple[str, int]] = []
    for index, label in enumerate(classes):
        rows = np.flatnonzero(labels == label)
        chosen += [(texts[i], index) for i in sorted(rng.choice(rows, size=min(shots, len(rows)), replace=False))]
    return [chosen[i] for i in rng.permutation(len(chosen))]


def calibrated(scores: np.ndarray, free: np.ndarray, prior: np.ndarray | None) -> np.ndarray:
    """Probabilities over labels; with ``prior``, contextual calibration: p / mean p(content-free) x prior."""
    probs = _softmax(scores)
    if prior is None or len(free) == 0:
        return probs
    bias = _softmax(free).mean(axis=0)
    weighted = probs / bias * prior
    return weighted / weighted.sum(axis=1, keepdims=True)


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class JudgePrompt:
    """The token ids the judge feeds: per text, its prompt; per label, the answer that is scored."""

    def __init__(self, tokenizer: Any, template: str | None, system: str, examples: list[tuple[str, str]],
                 completions: list[list[int]]):
        self.tokenizer = tokenizer
        self.template = template  # None: the tokenizer's own chat template
        self.system = system
        self.examples = examples
        self.completions = completions

    @classmethod
    def build(cls, tokenizer: Any, instruction: str, answer_words: list[str],
              examples: list[tuple[str, int]]) -> "JudgePrompt":
        """A tokenizer without a chat template gets the plain turns; ``LLMJudge.fit`` has refused it unless
        ``plain_prompt`` asked for them."""
        template = None if getattr(tokenizer, "chat_template", None) else PLAIN_TEMPLATE
        system = instruction.replace("{labels}", ", ".join(answer_words))
        shown = [(text, answer_words[index]) for text, index in examples]
        prompt = cls(tokenizer, template, system, shown, [])
        prompt.completions = [prompt.completion(word) for word in answer_words]
        return prompt

    def messages(self, text: str) -> list[dict[str, str]]:
        turns = [{"role": "system", "content": self.system}]
        for example, word in self.examples:
            turns += [{"role": "user", "content": example}, {"role": "assistant", "content": word}]
        return turns + [{"role": "user", "content": text}]

    def _render(self, messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
        return list(self.tokenizer.apply_chat_template(
            messages, chat_template=self.template, add_generation_prompt=generation_prompt, tokenize=True,
            return_dict=False, sanitize_control_tokens=True))

    def ids(self, text: str) -> list[int]:
        """The prompt for ``text``, up to where the assistant's answer starts; the text stays plain text."""
        return self._render(self.messages(text), True)

    def completion(self, word: str) -> list[int]:
        """The answer's tokens as the template writes them, through the end-of-turn token (trailing
        whitespace after it is not part of the answer)."""
        turns = self.messages("x")
        asked = self._render(turns, True)
        full = self._render(turns + [{"role": "assistant", "content": word}], False)
        if full[:len(asked)] != asked:
            raise AugmentError(f"{self.tokenizer.name_or_path}: the chat template does not write an answer after "
                               "its generation prompt; the judge cannot score answers with it")
        tail = full[len(asked):]
        while tail and not self.tokenizer.decode(tail[-1:]).strip():
            tail.pop()
        if not tail:
            raise AugmentError(f"answer '{word}' has no tokens in this chat template")
        return tail

    def key(self) -> str:
        """What the scores depend on besides the model and the text."""
        return hash_json({"version": JUDGE_VERSION, "template": self.template or self.tokenizer.chat_template,
                          "messages": self.messages("\x00TEXT\x00"), "completions": self.completions})


def require_chat_template(tokenizer: Any, model: str) -> None:
    """The judge asks a question in the model's chat format; a base LM has none to answer in."""
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"llm-judge:{model}: not an instruct model (its tokenizer has no chat template); name one "
                          "that has, e.g. llm-judge:qwen2.5-coder-0.5b-instruct")


def check_judge_model(model: str) -> None:
    """Before any work: a judge's model that is on this machine must be an instruct model (hub ids are
    checked when the judge is fitted, where their tokenizer is downloaded anyway)."""
    from augment.models import SHORT_NAMES, resolve_model

    if model in SHORT_NAMES or Path(model).expanduser().exists():
        require_chat_template(cached_tokenizer(resolve_model(model)), model)


@functools.lru_cache(maxsize=4)
def cached_tokenizer(path: str) -> Any:
    """Loaded once per process: every fit and clone in a grid shares it."""
    from augment.models import load_tokenizer

    return load_tokenizer(path)


@functools.lru_cache(maxsize=2)
def cached_model(path: str, dtype: str, device: str) -> Any:
    """Loaded once per (path, format, device) per process, like the sentence encoder."""
    import torch

    from augment.models import load_model

    log.info("loading judge model %s (%s on %s)", path, dtype, device)
    model = load_model(path, dtype=getattr(torch, dtype)).to(device)
    return model.eval()


class ScoreStore:
    """Raw scores of one (model, format, prompt) on disk: shards of JSON lines, each written atomically
    once, so concurrent runs never lose or tear each other's rows (at worst both score a text)."""

    def __init__(self, folder: Path):
        self.folder = folder

    @classmethod
    def open(cls, model_dir: str, prompt: JudgePrompt, where: Any) -> "ScoreStore":
        model = hash_json({"model": model_fingerprint(model_dir), "precision": where.choice.precision,
                           "device": where.device.type})
        return cls(cache_root() / "judge" / model[:16] / prompt.key()[:16])

    def read(self) -> dict[str, list[float]]:
        rows: dict[str, list[float]] = {}
        for shard in sorted(self.folder.glob("scores-*.jsonl")):
            try:
                rows.update({r["text"]: r["scores"] for r in read_jsonl(shard)})
            except (OSError, ValueError, KeyError):
                log.warning("%s: unreadable score shard ignored", shard)
        return rows

    def write(self, rows: dict[str, list[float]]) -> None:
        name = hash_json(sorted(rows))[:16]
        write_jsonl_atomic(self.folder / f"scores-{name}-{os.getpid()}.jsonl",
                           ({"text": k, "scores": v} for k, v in rows.items()))


def model_fingerprint(model_dir: str) -> str:
    """The content hash of a local model dir, computed once per version of its files (a 1.5B model is
    7 GB to read); a hub id stands for itself."""
    path = Path(model_dir)
    if not path.is_dir():
        return hash_json({"hub": model_dir})
    stats = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in path.iterdir() if f.is_file())
    record = cache_root() / "judge" / "fingerprints" / f"{hash_json([str(path.resolve()), stats])[:24]}.json"
    known = read_json(record, "model fingerprint", default=None)
    if isinstance(known, dict) and isinstance(known.get("hash"), str):
        return known["hash"]
    digest = hash_dir(path, ("*.json", "*.safetensors", "*.txt", "*.jinja", "*.model"))
    write_json_atomic(record, {"path": str(path.resolve()), "hash": digest})
    return digest


def score_texts(model: Any, prompt: JudgePrompt, texts: list[str], batch_size: int,
                prefix_cache: bool) -> np.ndarray:
    """Log-probability of every answer after every text's prompt [texts, labels]."""
    import torch

    rows = [prompt.ids(t) for t in texts]
    shared = _common_prefix(rows) if prefix_cache and len(rows) > 1 else []
    if prefix_cache and len(rows) == 1:
        shared = _common_prefix([rows[0], prompt.ids("\x01" if texts[0] != "\x01" else "\x02")])
    out = np.zeros((len(texts), len(prompt.completions)))
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    with torch.inference_mode():
        kv = _prefix_kv(model, shared) if shared else None
        for start in range(0, len(order), max(1, batch_size)):
            batch = order[start:start + batch_size]
            out[batch] = _forward(model, kv, len(shared), [rows[i][len(shared):] for i in batch], prompt.completions)
    return out


def _common_prefix(rows: list[list[int]]) -> list[int]:
    """The tokens every prompt starts with (instruction and examples), less one: the last shared token
    must stay with each row so every row has at least one token of its own to predict the answer from."""
    first, n = rows[0], min(len(r) for r in rows)
    for row in rows[1:]:
        n = next((i for i in range(n) if row[i] != first[i]), n)
    return first[:max(0, n - 1)]


def _prefix_kv(model: Any, ids: list[int]) -> list[tuple[Any, Any]]:
    import torch
    from transformers import DynamicCache

    from augment.models import cache_kwarg

    cache = DynamicCache()
    device = next(model.parameters()).device
    model(input_ids=torch.tensor([ids], device=device), use_cache=True, logits_to_keep=1,
          **{cache_kwarg(model): cache})
    return [(layer.keys, layer.values) for layer in cache.layers]


def _forward(model: Any, kv: list[tuple[Any, Any]] | None, offset: int, suffixes: list[list[int]],
             completions: list[list[int]]) -> np.ndarray:
    """One pass for a batch: row = left-padded suffix, then every answer; answer ``j`` sees the shared
    prefix, the row's suffix and its own earlier tokens, at the positions it would have alone."""
    import torch
    from transformers import DynamicCache

    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    width = max(len(s) for s in suffixes)
    answer = [tok for c in completions for tok in c]
    segment = [0] * width + [j + 1 for j, c in enumerate(completions) for _ in c]
    step = [0] * width + [t for c in completions for t in range(len(c))]
    total, batch = width + len(answer), len(suffixes)
    ids = torch.zeros((batch, total), dtype=torch.long)
    real = torch.zeros((batch, total), dtype=torch.bool)
    positions = torch.full((batch, total), offset, dtype=torch.long)
    for r, suffix in enumerate(suffixes):
        pad = width - len(suffix)
        ids[r, pad:] = torch.tensor(suffix + answer)
        real[r, pad:] = True
        positions[r, pad:width] = torch.arange(offset, offset + len(suffix))
        positions[r, width:] = offset + len(suffix) + torch.tensor(step[width:])
    seg = torch.tensor(segment)
    causal = torch.ones(total, total, dtype=torch.bool).tril()
    same = (seg[None, :] == 0) | (seg[None, :] == seg[:, None])
    allowed = causal & same & real[:, None, :] | torch.eye(total, dtype=torch.bool)
    allowed = torch.cat([torch.ones(batch, total, offset, dtype=torch.bool), allowed], dim=2)
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
    keep, targets = _scored_columns(width, completions)
    from augment.models import cache_kwarg

    kwargs = {}
    if kv is not None:
        kwargs[cache_kwarg(model)] = DynamicCache(
            ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in kv])
    logits = model(input_ids=ids.to(device), position_ids=positions.to(device),
                   attention_mask=mask[:, None].to(device), use_cache=kv is not None,
                   logits_to_keep=torch.tensor(keep, device=device), **kwargs).logits
    logp = torch.log_softmax(logits.float(), dim=-1)
    scores = torch.zeros(batch, len(completions), dtype=torch.float64)
    for column, (label, token) in targets:
        scores[:, label] += logp[:, column, token].double().cpu()
    return scores.numpy()


def _scored_columns(width: int, completions: list[list[int]]) -> tuple[list[int], list[tuple[int, tuple[int, int]]]]:
    """The columns whose logits are read, and for each the (label, token) it predicts: an answer's first
    token is predicted from the suffix's last column, each next one from the answer's previous token."""
    keep, targets, start = [width - 1], [], width
    for label, tokens in enumerate(completions):
        for t, token in enumerate(tokens):
            column = width - 1 if t == 0 else start + t - 1
            if column not in keep:
                keep.append(column)
            targets.append((keep.index(column), (label, token)))
        start += len(tokens)
    return keep, targets
