"""What writes a label's rows, one small interface for every kind of run.

A trained LM (full weights or a LoRA adapter on a shared base; one model per label or
one conditioned on a label marker) continues a separator and a few prefix words; an
instruct model answers a chat prompt that shows real rows of the label. The loop only
sees ``LabelGenerator``: prompt ids, stop tokens, the text of a finished row.
``Generators`` opens a run once (its manifest, training rows, tokenizers and a shared
base) and hands out one generator per label.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augment.config import GenerateConfig, InstructConfig
from augment.generate.context import (check_context, check_label_fits, config_dir, longest_instruct_prompt,
                                      prefixes)
from augment.generate.sampler import sampling_params
from augment.instruct import Answer, chat_ids, describe, example_subset, parse_answer, user_message
from augment.models import Placement, load_model, load_tokenizer, placement
from augment.prompts import encode_text, label_token, prompt_ids, scrub
from augment.rundir import Manifest, RunDir


@dataclass
class LabelGenerator:
    """A trained LM, loaded and ready to sample rows for one label."""

    model: Any
    tokenizer: Any
    place: Placement
    label: str
    conditioned: bool
    all_labels: list[str]
    model_name: str
    separator: int | None = None   # None: the tokenizer's EOS (runs made before the separator was chosen)
    adapter: tuple[Any, str, Path] | None = None   # (AdapterSet, name, dir): switched on before each batch

    @property
    def separator_id(self) -> int:
        """Every prompt starts with it and a row stops at it: the token rows were packed with."""
        return self.tokenizer.eos_token_id if self.separator is None else self.separator

    @property
    def stop_ids(self) -> frozenset[int]:
        return frozenset({self.separator_id})

    @property
    def shared_prefix(self) -> list[int]:
        """The prompt start every row of the label has, computed once per batch (none here)."""
        return []

    @classmethod
    def load(cls, run: RunDir, label: str, precision: str = "auto") -> "LabelGenerator":
        return Generators.open(run, [label], precision).generator(label)

    def activate(self) -> None:
        """Make this label's adapter the active one (an adapter run's labels share one base)."""
        if self.adapter is not None:
            adapters, name, path = self.adapter
            adapters.use(name, path)

    def prompt(self, prefix: str, index: int = 0, seed: int = 0) -> list[int]:
        """Separator, label marker (conditioned runs), then the prefix as plain text."""
        return prompt_ids(self.tokenizer, self.separator_id, self.label if self.conditioned else None, prefix)

    def answer(self, text: str) -> Answer:
        return Answer(text)

    def suppressed(self) -> list[int]:
        """Label markers may only ever appear in the prompt."""
        if not self.conditioned:
            return []
        return [self.tokenizer.convert_tokens_to_ids(label_token(l)) for l in self.all_labels]

    def text(self, prefix: str, tokens: list[int]) -> str:
        return scrub(prefix + self.tokenizer.decode(tokens, skip_special_tokens=True), self.all_labels)

    def params(self, config: GenerateConfig) -> dict[str, Any]:
        return sampling_params(config)

    def record(self, text: str, config: GenerateConfig) -> dict[str, Any]:
        return {"text": self.answer(text).text, "label": self.label, "model": self.model_name, "seed": config.seed,
                "params": json.dumps(self.params(config), sort_keys=True)}


@dataclass(frozen=True)
class InstructPrompts:
    """Each row's chat prompt shows its own seeded subset of the label's real rows."""

    settings: InstructConfig
    examples: list[str]
    description: str

    def ids(self, tokenizer: Any, seed: int, label: str, index: int) -> list[int]:
        shown = example_subset(self.examples, self.settings.examples, seed, label, index)
        return self.ids_for(tokenizer, shown)

    def ids_for(self, tokenizer: Any, shown: list[str]) -> list[int]:
        return chat_ids(tokenizer, self.settings.system, user_message(self.settings.user, shown, self.description))


@dataclass
class InstructGenerator(LabelGenerator):
    """An instruct model prompted, untrained: a row is the parsed answer to the label's chat prompt."""

    prompts: InstructPrompts = field(kw_only=True)

    @property
    def stop_ids(self) -> frozenset[int]:
        """Also EOS: some chat templates end a turn with a token other than the separator."""
        return frozenset({self.separator_id, self.tokenizer.eos_token_id})

    @functools.cached_property
    def shared_prefix(self) -> list[int]:
        """The chat up to the first example, found by building the prompt around two different rows."""
        one, other = (self.prompts.ids_for(self.tokenizer, [row]) for row in ("x", "7"))
        return [a for a, _ in itertools.takewhile(lambda pair: pair[0] == pair[1], zip(one, other))]

    def prompt(self, prefix: str, index: int = 0, seed: int = 0) -> list[int]:
        """Row ``index``'s chat prompt, then the prefix as the start of the answer."""
        return self.prompts.ids(self.tokenizer, seed, self.label, index) + encode_text(self.tokenizer, prefix)

    def answer(self, text: str) -> Answer:
        return parse_answer(text)

    def params(self, config: GenerateConfig) -> dict[str, Any]:
        return sampling_params(config, instruct=True)


@dataclass
class Generators:
    """A run opened once for a job or an API session: the manifest and training rows are read once, a
    full run loads each label's model dir when asked, an adapter or instruct run loads its base once."""

    run: RunDir
    manifest: Manifest
    place: Placement
    _texts: dict[str, list[str]] | None = None
    _tokenizers: dict[Path, Any] = field(default_factory=dict)
    _loaded: dict[str, LabelGenerator] = field(default_factory=dict)
    _adapters: Any = None   # augment.adapters.AdapterSet, once the base is loaded
    _shared: Any = None     # instruct mode: the one chat model every label prompts

    @classmethod
    def open(cls, run: RunDir, labels: Sequence[str], precision: str = "auto",
             manifest: Manifest | None = None) -> "Generators":
        """``labels``: those the job will ask for (each must be finished); the first one's architecture sizes
        ``precision: auto``. ``manifest``: one already read (rank 0's, under a launcher)."""
        manifest = manifest or run.read_manifest()
        for label in labels:
            run.finished_model(label, manifest)
        return cls(run, manifest, placement(precision, model=config_dir(run, manifest, labels[0])))

    @property
    def instruct(self) -> bool:
        return self.manifest.mode == "instruct"

    def model_dir(self, label: str) -> Path:
        return self.run.finished_model(label, self.manifest)

    def train_texts(self, label: str) -> list[str]:
        if self._texts is None:
            self._texts = self._read_train()
        return self._texts.get(label, [])

    def prompt_texts(self, label: str, given: Mapping[str, Sequence[str]] | None = None) -> list[str]:
        """The texts whose first words start the prompts: ``given[label]`` (e.g. unlabelled rows),
        else the label's training rows."""
        return list(given[label]) if given is not None else self.train_texts(label)

    def tokenizer(self, label: str) -> Any:
        path = self.model_dir(label)
        if path not in self._tokenizers:
            self._tokenizers[path] = load_tokenizer(str(path))
        return self._tokenizers[path]

    def check_fits(self, labels: Sequence[str], config: GenerateConfig,
                   given: Mapping[str, Sequence[str]] | None = None) -> None:
        """Every label's longest prompt plus ``config.max_new_tokens`` fits its model (tokenizer only)."""
        for label in labels:
            tokenizer, path = self.tokenizer(label), self.model_dir(label)
            starts = self.prompt_texts(label, given)
            if self.instruct:
                tokens = longest_instruct_prompt(tokenizer, InstructConfig(**self.manifest.finetune["instruct"]),
                                                 label, self.train_texts(label), prefixes(starts, config.prefix_words))
                check_context(path, tokens, config.max_new_tokens, str(path))
                continue
            check_label_fits(config_dir(self.run, self.manifest, label), tokenizer,
                             self.manifest.separator_id(tokenizer), self.manifest.mode, label, starts, config)

    def generator(self, label: str) -> LabelGenerator:
        if label not in self._loaded:
            self._loaded[label] = self._load(label)
        return self._loaded[label]

    def _load(self, label: str) -> LabelGenerator:
        path, tokenizer = self.model_dir(label), self.tokenizer(label)
        adapter = None
        if self.instruct:
            if self._shared is None:
                self._shared = load_model(str(path), dtype=self.place.dtype).to(self.place.device).eval()
            model = self._shared
        elif self.manifest.adapter is None:
            model = load_model(str(path), dtype=self.place.dtype).to(self.place.device).eval()
        else:
            adapter = (self._adapter_set(len(tokenizer)), self.manifest.model_key(label, self.run.root), path)
            model = adapter[0].use(adapter[1], path)
        common = dict(model=model, tokenizer=tokenizer, place=self.place, label=label,
                      conditioned=self.manifest.mode == "conditioned", all_labels=sorted(self.manifest.labels),
                      model_name=f"{self.run.root.name}/{path.name}",
                      separator=self.manifest.separator_id(tokenizer), adapter=adapter)
        if not self.instruct:
            return LabelGenerator(**common)
        settings = InstructConfig(**self.manifest.finetune["instruct"])
        prompts = InstructPrompts(settings, self.train_texts(label), describe(label, settings.descriptions))
        return InstructGenerator(**common, prompts=prompts)

    def _adapter_set(self, vocabulary: int) -> Any:
        from augment.adapters import AdapterSet, base_path, load_base

        if self._adapters is None:
            assert self.manifest.adapter is not None
            base = base_path(self.manifest.adapter.base, self.run.root)
            model = load_base(base, vocabulary, self.place.dtype).to(self.place.device).eval()
            self._adapters = AdapterSet(model)
        return self._adapters

    def _read_train(self) -> dict[str, list[str]]:
        path = self.run.root / "train.jsonl"
        texts: dict[str, list[str]] = {}
        if path.exists():
            with open(path, encoding="utf-8") as fh:
                for row in map(json.loads, fh):
                    texts.setdefault(row["label"], []).append(row["text"])
        return texts
