"""Sales fixtures: the holiday calendar is re-read per test (flushing tests empty it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.core.workcalendar import forget_calendar


@pytest.fixture(autouse=True)
def _fresh_calendar() -> Iterator[None]:
    forget_calendar()
    yield
    forget_calendar()
