"""The one way to synthetic rows: the CLI's job, the Python API, ``augment run`` and the
experiment pools all call ``generate_rows``; writing files is each caller's own step."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from augment.config import GenerateConfig
from augment.distributed import Comm, LocalComm
from augment.generate.generators import Generators
from augment.generate.loop import collect_rows, resolve_batch_size
from augment.generate.parts import Parts
from augment.generate.sampler import COLUMNS


@dataclass(frozen=True)
class Generated:
    """``config.n`` rows per label (columns ``COLUMNS``) and how they were made."""

    rows: pd.DataFrame
    batch_sizes: dict[str, int]
    answers_dropped: dict[str, dict[str, int]] | None   # instruct mode: label -> reason -> answers


def generate_rows(gens: Generators, labels: Sequence[str], config: GenerateConfig, *,
                  prefix_texts: Mapping[str, Sequence[str]] | None = None, comm: Comm | None = None,
                  parts: Parts | None = None, on_rows: Callable[[str, int], None] | None = None) -> Generated:
    """Rows for each of ``labels``, in label order then row index, identical for any batch size or world size.

    ``prefix_texts[label]``: texts whose first words start the prompts (default: the label's training rows);
    ``parts``: where finished rows are reused from and saved to; ``on_rows(label, k)`` hears of new rows.
    Under a launcher every rank samples its share and gets all rows.
    """
    comm = comm or LocalComm()
    gens.check_fits(labels, config, prefix_texts)  # tokenizers only: fails before any weights load
    frames, sizes, dropped = [], {}, {}
    for label in labels:
        gen = gens.generator(label)
        size = sizes[label] = comm.all_gather(resolve_batch_size(gen, config))[0]
        rows = collect_rows(gen, config, gens.prompt_texts(label, prefix_texts), comm, size=size,
                            cached=parts.cached(label) if parts else None,
                            saved=(lambda texts, label=label: parts.save(label, texts)) if parts else None,
                            on_rows=(lambda k, label=label: on_rows(label, k)) if on_rows else None,
                            on_dropped=lambda counts, label=label: dropped.__setitem__(label, counts))
        frames.append(pd.DataFrame(rows, columns=COLUMNS))
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return Generated(rows, sizes, dropped if gens.instruct else None)
