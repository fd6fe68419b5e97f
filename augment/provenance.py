"""The fields every provenance record shares: how to reproduce an artefact, and on what it was made.

``augment.files.provenance`` fills them in; a typed record adds what its artefact needs and is
written and read through its own class.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict

from augment.files import provenance


class Provenance(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    versions: dict[str, str]
    python: str
    platform: str
    argv: list[str]
    created: str

    @classmethod
    def now(cls, config: Any, **extra: Any) -> Self:
        """This record, made here and now by the running command."""
        return cls.model_validate(provenance(config, **extra))
