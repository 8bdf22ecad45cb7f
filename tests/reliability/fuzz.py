"""Shared pieces of the property-based (hypothesis) tests: the profiles and what an error must look like.

Profiles (``HYPOTHESIS_PROFILE``): ``ci`` (the default; derandomized, so every run of the
suite draws the same examples, and no example database is written) and ``deep`` (many
more examples, random; ``HYPOTHESIS_PROFILE=deep pytest tests/reliability -k fuzz``).
"""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, settings

from mmrefine.core.errors import MMRefineError

settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
settings.register_profile("deep", max_examples=1000, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def examples(n: int) -> int:
    """``n`` examples under the ``ci`` profile, the profile's own count under ``deep``."""
    return n if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci" else settings().max_examples


def assert_one_line_naming(exc: BaseException, names: list[str], phrases: tuple[str, ...] = ()) -> None:
    """``exc`` is one of mmrefine's errors, one line, and names one of ``names`` (quoted, as
    mmrefine quotes columns, keys and files) or says one of the whole-input ``phrases``."""
    assert isinstance(exc, MMRefineError), f"{type(exc).__name__} is not an mmrefine error: {exc}"
    text = str(exc)
    assert "\n" not in text, f"a multi-line message: {text!r}"
    named = any(f"'{n}'" in text or f"{n}:" in text or f"/{n}" in text for n in names)
    said = any(re.search(p, text) for p in phrases)
    assert named or said, f"the message names none of {names}: {text!r}"
