"""Hypothesis profiles: ``full`` (the default, what `make test` runs) and ``quick``
(`make check`), chosen with HYPOTHESIS_PROFILE."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("full", deadline=None)
settings.register_profile("quick", max_examples=20, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "full"))
