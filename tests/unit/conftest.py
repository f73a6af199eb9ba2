"""Unit tests: pure domain and sink code, no servers.

The project is not installed into the virtualenv, so the repository root is put on
``sys.path`` here (``pythonpath = ["."]`` in the pytest config would do the same).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
