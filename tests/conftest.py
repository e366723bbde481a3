"""The whole suite's setup: `support` on the import path, the Hypothesis profiles, and the
fixtures more than one test module uses.

Layout: tests/job/ tests the job (accounts_job), tests/generator/ the test-data generator
(accounts_gen); tests/support/ holds the reference model, the Hypothesis strategies, the
worked example of docs/rules.md §9 and small helpers. Test modules never import one
another.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Test modules import the shared code as `support.model`, `support.helpers`, ... For that
# this folder must be on sys.path. pytest's default "prepend" import mode happens to put it
# there (this conftest lives in a folder without __init__.py), but `--import-mode=importlib`
# does not, and pyproject.toml (where `pythonpath` would go) belongs to the package, so the
# suite says it itself, before anything imports `support`.
TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from support.example import WORKED_EXAMPLE  # noqa: E402

# Every property test runs under the profile HYPOTHESIS_PROFILE names: "quick" by default,
# "thorough" for many more examples (HYPOTHESIS_PROFILE=thorough pytest ...).
settings.register_profile(
    "quick", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "quick")

# Long fault loops (hundreds of kills, every byte of a file damaged) are marked `slow`: they
# run with ACCOUNTS_JOB_SLOW=1 (or `pytest -m slow`), not in the ten-minute suite CI runs.
SLOW = os.environ.get("ACCOUNTS_JOB_SLOW") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a long fault loop; runs with ACCOUNTS_JOB_SLOW=1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SLOW or "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="a slow fault loop: set ACCOUNTS_JOB_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """The worked example's input (docs/rules.md §9) as a file, in a folder of its own."""
    path = tmp_path / "in" / "example.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(WORKED_EXAMPLE.encode("utf-8"))
    return path


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    """An empty folder for a run's outputs, apart from its input."""
    d = tmp_path / "out"
    d.mkdir()
    return d
