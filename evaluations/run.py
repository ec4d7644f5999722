"""Print Lictor's figures on the public datasets: ``.venv/bin/python evaluations/run.py [--json]``.

A thin script: the work is in ``evaluations.report``. Run as a file, Python puts
``evaluations/`` rather than the repository root on ``sys.path``, so we add the root.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluations.report import main

if __name__ == "__main__":
    raise SystemExit(main())
