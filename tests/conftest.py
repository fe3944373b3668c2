"""Shared test fixtures: the reference parity fixture and small synthetic model files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def fixture_dir() -> Path:
    return Path(os.environ.get("AGENT_TTS_FIXTURE", REPO.parent / "shared" / "fixtures" / "gsv-v2"))


@pytest.fixture(scope="session")
def gsv_v2_fixture() -> Path:
    """The gsv-v2 reference fixture; required in CI, skipped with a reason elsewhere if absent."""
    path = fixture_dir()
    if not (path / "manifest.json").is_file():
        message = f"reference fixture not found at {path} (set AGENT_TTS_FIXTURE)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
