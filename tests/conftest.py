"""Shared test configuration: Hypothesis profiles and test-data paths.

Profiles (chosen with ``HYPOTHESIS_PROFILE``): ``dev`` (default, quick),
``ci`` (more examples, no deadline: the CI machine has two busy cores) and
``deterministic`` (derandomized, for reproducing a failure).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.buses import PrivateBus

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("deterministic", max_examples=100, deadline=None, derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

DATA = Path(__file__).parent / "data"


@pytest.fixture
def session_bus() -> Iterator[PrivateBus]:
    """A private session bus (a real ``dbus-daemon``) for one test."""
    with PrivateBus() as bus:
        yield bus


@pytest.fixture
def system_bus() -> Iterator[PrivateBus]:
    """A second private bus standing in for the system bus (fake BlueZ lives here)."""
    with PrivateBus() as bus:
        yield bus
