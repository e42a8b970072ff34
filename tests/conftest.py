"""Shared fixtures: one loaded assistant for the whole run (loading is pure and read-only)."""

from pathlib import Path

import pytest

from knowledge.answer import Assistant
from knowledge.loader import load_knowledge

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dichvucong"


@pytest.fixture(scope="session")
def assistant() -> Assistant:
    return Assistant(load_knowledge())
