"""Print Lictor's quality figures: ``.venv/bin/python benchmarks/quality/run.py [--json]``.

A thin script: the work is in ``benchmarks.quality.report``. Run as a file, Python puts
this directory rather than the repository root on ``sys.path``, so we add the root.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.quality.report import main

if __name__ == "__main__":
    raise SystemExit(main())
