"""Shared test fixtures: the reference parity fixture and small synthetic model files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def fixture_dir() -> Path:
    return Path(os.environ.get("AGENT_TTS_FIXTURE", REPO.parent / "shared" / "fixtures" / "gsv-v2"))


def _required_fixture(path: Path, manifest: str, variable: str) -> Path:
    """A reference fixture folder; required in CI, skipped with a reason elsewhere if absent."""
    if not (path / manifest).is_file():
        message = f"reference fixture not found at {path} (set {variable})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def gsv_v2_fixture() -> Path:
    """The gsv-v2 reference fixture (manifest at the root)."""
    return _required_fixture(fixture_dir(), "manifest.json", "AGENT_TTS_FIXTURE")


@pytest.fixture(scope="session")
def gsv_v2pro_fixture() -> Path:
    """The gsv-v2pro-tiny reference fixture (manifest in golden/)."""
    path = Path(os.environ.get("AGENT_TTS_V2PRO_FIXTURE", REPO.parent / "shared" / "fixtures" / "gsv-v2pro-tiny"))
    return _required_fixture(path, "golden/manifest.json", "AGENT_TTS_V2PRO_FIXTURE")
