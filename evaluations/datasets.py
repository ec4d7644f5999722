"""Where the public datasets live, and how to read their JSON Lines files.

The data is not in this repository (each dataset keeps its own licence): CI checks out a
copy of ``shared/`` beside the clone, so the default is ``<repo>/../shared/datasets``.
``LICTOR_DATASETS`` overrides it, for a checkout somewhere else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: The repository root: this file is ``<repo>/evaluations/datasets.py``.
REPO = Path(__file__).resolve().parent.parent
ENV_VAR = "LICTOR_DATASETS"


def datasets_dir() -> Path:
    """Return the datasets directory: ``$LICTOR_DATASETS`` or ``<repo>/../shared/datasets``."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override)
    return REPO.parent / "shared" / "datasets"


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Yield each JSON object of a JSON Lines file, skipping blank lines.

    Raises:
        ValueError: a line is not a JSON object (the data is corrupt, so stop loudly).
    """
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object")
            yield item
