"""Hypothesis profiles shared by every property test.

- "ci": deterministic (derandomize, no example database), no deadline (real LMDB I/O on a noisy
  2-core machine), a reproduce blob printed on failure. Loaded when the CI env var is set.
- "dev": the default locally; random but replayable from the local example database.
- "thorough": many more examples, for a manual or nightly run
  (pytest --hypothesis-profile=thorough).

Example counts are kept small enough that all property tests together run well under a minute;
individual tests that need fewer or more examples say so with their own @settings.
"""

from __future__ import annotations

import os
import sys

from hypothesis import HealthCheck, settings

# Let property tests share helpers with tests/ (e.g. tests/support.py) without packaging them.
_TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
if _TESTS not in sys.path:
    sys.path.append(_TESTS)

_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    stateful_step_count=30,
)

settings.register_profile(
    "ci", max_examples=60, derandomize=True, database=None, print_blob=True, **_COMMON
)
settings.register_profile("dev", max_examples=60, **_COMMON)
settings.register_profile("thorough", max_examples=2000, **_COMMON)

# A profile chosen on the command line (pytest --hypothesis-profile=thorough) wins; otherwise
# "ci" when CI is set (hypothesis has then already loaded its built-in "ci", which the
# registration above replaced), else "dev".
if settings.get_current_profile_name() in ("default", "ci"):
    settings.load_profile("ci" if os.environ.get("CI") else "dev")
