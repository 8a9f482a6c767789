"""Shared fixtures of the vtde wheel's tests (run by tools/test-python.sh in a fresh
virtual environment with the built wheel installed)."""

import os
import pathlib

import pytest

import vtde

REPO = pathlib.Path(__file__).resolve().parents[3]
DEMO = REPO / "models" / "demo"
EXAMPLES = sorted((REPO / "models" / "examples").glob("*.png"))
FIXTURES = REPO / "tests" / "fixtures"
LABELS = [
    "a red circle",
    "a blue square",
    "a green triangle",
    "a yellow star",
    "a purple cross",
    "a blue triangle",
]


@pytest.fixture(scope="session")
def demo() -> vtde.Model:
    return vtde.Model(DEMO, threads=2)


@pytest.fixture(scope="session")
def cli() -> pathlib.Path:
    """The `vtde` binary built from this checkout (tools/test-python.sh sets VTDE_CLI)."""
    path = os.environ.get("VTDE_CLI")
    assert path, "set VTDE_CLI to the vtde binary (tools/test-python.sh does)"
    path = pathlib.Path(path)
    assert path.is_file(), f"{path} is not a file"
    return path
