"""Reference augmenters made of real text, the yardsticks an LM's lift is read against.

* ``oracle``: real labelled rows from the training pool, in exactly the counts
  the synthetic rows would add. Its lift is the ceiling: "what if the user had
  labelled that many more rows". Synthetic efficiency = LM lift / oracle lift.
* ``pseudo-label``: the unlabelled pool texts (the ones an LM with
  ``prompts: pool`` starts its rows from), labelled by a classifier trained on the
  cell's sample, the ``k`` per label it is surest of. It shows what generation
  adds over the unlabelled text itself.

Both draw only from ``PreparedData.outside(sample, validation)``: never a test
row, never a validation row, never a row already in the cell's sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from augment.data import LABEL, TEXT
from augment.errors import ConfigError

SCORE = "score"


def oracle_order(candidates: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The candidate rows in one seeded order: every ratio takes the first ``k`` of each label,
    so a larger ratio's rows extend a smaller one's (the same nesting the LM pools have)."""
    return candidates[[TEXT, LABEL]].sample(frac=1.0, random_state=seed).reset_index(drop=True)


def first_per_label(ordered: pd.DataFrame, k: int) -> pd.DataFrame:
    """The first ``k`` rows of each label of an ordered frame (fewer where a label has fewer)."""
    rows = ordered.groupby(LABEL, sort=True).head(k)
    return rows.sort_values(LABEL, kind="stable").reset_index(drop=True)[[TEXT, LABEL]]


def pseudo_label_accuracy(kept: pd.DataFrame, truth: pd.DataFrame) -> float | None:
    """Share of kept pseudo-labels that equal the pool's real label (the pool is labelled data used
    as unlabelled, so the experiment can say how often the labeller was right)."""
    if kept.empty:
        return None
    real = dict(zip(truth[TEXT], truth[LABEL]))
    return float(np.mean([real.get(t) == label for t, label in zip(kept[TEXT], kept[LABEL])]))


def check_reference_rows(name: str, spec: Any, examples: list[int], ratios: list[float],
                         available: pd.DataFrame, labels: list[str]) -> None:
    """Before any model is loaded: the pool holds the rows the largest cell of ``spec`` would add.

    ``available`` is the pool less the validation draw; the sample's own rows come off it too, in
    the worst case where the sample avoids the draw.
    """
    from augment.experiment.grid import rows_per_label

    counts = available[LABEL].value_counts()
    for epc in sorted(examples):
        need = rows_per_label(max(ratios), epc)
        if spec.type == "oracle":
            short = {l: int(counts.get(l, 0)) - epc for l in labels if int(counts.get(l, 0)) - epc < need}
            if short:
                detail = ", ".join(f"'{l}' has {max(n, 0)}" for l, n in sorted(short.items()))
                raise ConfigError(f"augmenter '{spec.name}': ratio {max(ratios):g} at examples_per_class {epc} "
                                  f"asks for {need} real rows per label beyond the sample, but in dataset '{name}' "
                                  f"outside the test split, the validation rows and the sample {detail}; "
                                  "lower the largest ratio or drop the oracle")
        else:
            texts = len(available) - epc * len(labels)
            if texts < need * len(labels):
                raise ConfigError(f"augmenter '{spec.name}': ratio {max(ratios):g} at examples_per_class {epc} "
                                  f"needs {need * len(labels)} unlabelled pool texts to label, but dataset '{name}' "
                                  f"has {max(texts, 0)} outside the test split, the validation rows and the sample")
