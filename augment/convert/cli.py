"""``augment convert``: the command function, registered by ``augment.cli``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from augment.errors import AugmentError

log = logging.getLogger(__name__)

TARGETS = ("hf", "gpt-2-simple")


def convert_command(
    src: Annotated[Path, typer.Argument(help="gpt-2-simple checkpoint dir (checkpoint/run1), OpenAI model dir "
                                             "(models/124M), run1.tar.gz / checkpoint_run1.tar; or, with "
                                             "--to gpt-2-simple, a Hugging Face GPT-2 dir.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to create.")],
    to: Annotated[str, typer.Option(help="Target format: hf or gpt-2-simple.")] = "hf",
    step: Annotated[Optional[int], typer.Option(help="Checkpoint step (model-STEP); default: the latest.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")] = False,
) -> Path:
    """Convert GPT-2 weights between gpt-2-simple (TensorFlow) and Hugging Face, without TensorFlow."""
    from augment.convert import gpt2simple_to_hf, hf_to_gpt2simple

    if to not in TARGETS:
        raise AugmentError(f"--to {to!r}: expected one of {', '.join(TARGETS)}")
    if Path(out).exists() and not overwrite:
        raise AugmentError(f"{out}: already exists; pass --overwrite to replace it")
    if to == "gpt-2-simple":
        if step is not None:
            raise AugmentError("--step applies to gpt-2-simple checkpoints; a Hugging Face dir has one set of weights")
        result = hf_to_gpt2simple(src, out, overwrite=overwrite)
    else:
        result = gpt2simple_to_hf(src, out, step=step, overwrite=overwrite)
    log.info("wrote %s", result)
    return result
