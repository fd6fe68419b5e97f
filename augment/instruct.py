"""Instruct-prompted rows: the chat prompt of one row, and the row parsed out of the model's answer.

No model is trained. Row ``i`` of label ``L`` is the answer of an instruct model to its
own chat prompt: the system message, then a user turn that shows ``k`` real rows of
``L`` (a subset drawn from ``(seed, L, i)`` alone, so a row never depends on the batch
it was sampled in) and asks for one new row. Answers are data: chatty prefixes
("Sure! Here is a new tweet:"), quotes, numbering and trailing explanations are cut,
and refusals or empty answers are dropped and counted, never kept as rows.

Everything here is pure (a tokenizer is passed in), so it is tested on canned answers.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from augment.errors import AugmentError, ConfigError

PARSER_VERSION = "instruct-parse-1"   # goes into a row's params and a job's resume key
TEMPLATE_ERROR = "has no chat template; instruct mode needs an instruct (chat) model, e.g. qwen2.5-coder-0.5b-instruct"

Dropped = Literal["refusal", "empty"]


@dataclass(frozen=True)
class Answer:
    """A parsed answer: the row, or why there is none."""

    text: str
    dropped: Dropped | None = None


def check_chat_model(tokenizer: Any, name: str) -> None:
    """One line naming the model when it cannot be prompted through a chat template."""
    if not getattr(tokenizer, "chat_template", None):
        raise AugmentError(f"{name}: {TEMPLATE_ERROR}")


def check_descriptions(descriptions: dict[str, str], labels: Sequence[str], where: str) -> None:
    """A description for a label the data lacks is a typo that would leave the real label undescribed."""
    unknown = sorted(set(descriptions) - set(labels))
    if unknown:
        raise ConfigError(f"{where}: no label '{unknown[0]}' in the data (labels: {', '.join(sorted(set(labels)))}); "
                          "each description is keyed by a label")


def example_subset(texts: Sequence[str], k: int, seed: int, label: str, index: int) -> list[str]:
    """The ``k`` real rows shown to row ``index``: a draw from ``(seed, label, index)`` alone."""
    rng = random.Random(f"instruct:{seed}:{label}:{index}")
    return rng.sample(list(texts), min(k, len(texts)))


def describe(label: str, descriptions: dict[str, str]) -> str:
    """What every row of ``label`` is, as the prompt says it (``label 'pos'`` without a description)."""
    return descriptions.get(label) or f"labelled '{label}'"


def user_message(instruction: str, examples: Sequence[str], description: str) -> str:
    listed = "\n".join(f"{n}. {' '.join(text.split())}" for n, text in enumerate(examples, 1))
    return instruction.format(examples=listed, description=description, k=len(examples))


def messages(system: str | None, user: str) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]


def chat_ids(tokenizer: Any, system: str | None, user: str) -> list[int]:
    """The chat template's tokens up to the assistant's answer. Messages are data: a control token
    inside a row is encoded as text. A template without a system role (Gemma's raises) gets the
    system text at the top of the user turn."""
    try:
        return _render(tokenizer, messages(system, user))
    except Exception as exc:  # jinja's raise_exception: "System role not supported"
        if not system or "system" not in str(exc).lower():
            raise AugmentError(f"{tokenizer.name_or_path}: chat template failed ({str(exc).splitlines()[0]})") \
                from None
        return _render(tokenizer, messages(None, f"{system}\n\n{user}"))


def _render(tokenizer: Any, conversation: list[dict[str, str]]) -> list[int]:
    ids = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True,
                                        return_dict=False, sanitize_control_tokens=True)
    return list(ids)


def end_of_turn(tokenizer: Any) -> int:
    """The token the template closes an assistant turn with (``<|im_end|>``, ``<end_of_turn>``,
    ``<|eot_id|>``): rendered, not guessed; the tokenizer's EOS when the template adds none."""
    marker = "Xq7Zr"
    turn = [{"role": "user", "content": "a"}, {"role": "assistant", "content": marker}]
    try:
        text = tokenizer.apply_chat_template(turn, tokenize=False)
    except Exception:  # templates that insist on other roles: the EOS is the safe stop
        return tokenizer.eos_token_id
    after = text[text.rindex(marker) + len(marker):]
    ids = tokenizer(after, add_special_tokens=False)["input_ids"]
    special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    return next((i for i in ids if i in special), tokenizer.eos_token_id)


# --- parsing -------------------------------------------------------------------------------------------

_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry,? (but )?i|i apologi[sz]e|i (can ?not|can't|cannot|won't|will not|am unable|"
    r"'m unable|am not able|'m not able|do not feel comfortable|don't feel comfortable)|as an ai\b|"
    r"unfortunately,? i (can|am|'m)|i must (decline|refuse)|i refuse)", re.IGNORECASE)
_PREFACE = re.compile(
    r"^([^:\n]{0,120}?[.!?]\s+)?\W*(sure|certainly|of course|okay|ok|absolutely|alright)?\W*"
    r"(here('s| is| are)|below is|this is)\b[^:\n]{0,80}:\s*", re.IGNORECASE)
_CHATTY_LINE = re.compile(r"^\W*(sure|certainly|of course|okay|ok|absolutely|alright)\b[^\n]{0,60}[.!:]\s*$",
                          re.IGNORECASE)
_FIELD = re.compile(
    r"^\s*(\*\*)?(new |generated |example |synthetic |sample )?(tweet|review|text|sentence|message|post|comment|"
    r"example|answer|output|response|row|headline|question)( \d+)?(\*\*)?\s*[:：](\*\*)?\s*", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*(\d{1,3}[.)]|[-*•])\s+")
_TRAILER = re.compile(
    r"^\W*(note|explanation|this|the (tweet|text|review|example) "
    r"(above|is|expresses)|i hope|let me know|feel free|label|sentiment|category|why)\b", re.IGNORECASE)
_INLINE_NOTE = re.compile(r"\s*[(\[](note|this|explanation|label|sentiment)\b[^)\]]*[)\]]?\s*$", re.IGNORECASE)
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "„": "“", "`": "`", "```": "```"}


def parse_answer(raw: str) -> Answer:
    """The row inside an instruct model's answer: quotes, prefixes ("Tweet:", "Here is ...:"),
    numbering and trailing notes removed; a refusal or nothing left is dropped with its reason."""
    text = raw.strip()
    if not text:
        return Answer("", "empty")
    if _REFUSAL.match(text):
        return Answer("", "refusal")
    lines = [line.strip() for line in text.splitlines()]
    while lines and (not lines[0] or _CHATTY_LINE.match(lines[0]) or _is_heading(lines[0], more=len(lines) > 1)):
        lines.pop(0)
    body = _first_paragraph(lines)
    body = _strip_prefixes(body)
    body = _INLINE_NOTE.sub("", body)
    body = _unquote(body).strip()
    if not body:
        return Answer("", "empty")
    if _REFUSAL.match(body):
        return Answer("", "refusal")
    return Answer(body)


def _is_heading(line: str, more: bool) -> bool:
    """A line that only announces the row ("Here is a new tweet:", "A new negative text would be:")."""
    return line.endswith(":") and (more or bool(_PREFACE.match(line) or _FIELD.fullmatch(line)))


def _first_paragraph(lines: list[str]) -> str:
    """Lines up to a blank line, a line that comments on the row, or the next numbered row."""
    kept: list[str] = []
    for line in lines:
        if not line or (kept and (_TRAILER.match(line) or _NUMBER.match(line))):   # a second row or a comment
            break
        kept.append(line)
    return " ".join(kept)


def _strip_prefixes(text: str) -> str:
    for _ in range(3):  # "Sure! Here is one: Tweet: 1. ..." peels in turns
        before = text
        text = _PREFACE.sub("", text, count=1)
        text = _FIELD.sub("", text, count=1)
        text = _NUMBER.sub("", text, count=1)
        text = _unquote(text)
        if text == before:
            break
    return text.strip()


def _unquote(text: str) -> str:
    text = text.strip()
    for opening, closing in sorted(_QUOTES.items(), key=lambda q: -len(q[0])):
        if len(text) >= 2 * len(opening) and text.startswith(opening):
            end = text.rfind(closing)
            if end < len(opening):
                continue
            rest = text[end + len(closing):].strip()
            if not rest.strip(".!?") or rest[0] in "-—–(" or _TRAILER.match(rest):
                return text[len(opening):end].strip()
    return text
