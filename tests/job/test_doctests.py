"""The examples in the package's docstrings run, and give what they show.

Every module of accounts_job whose source holds a `>>>` example is found by walking the
package (so a new one is tested without being listed here) and run with doctest. The
small pure kernels, kernels/bitmaps.py and io/schemas.py, must have examples that are
actually found and run: bitmaps' functions are numba dispatchers, which doctest reaches
only by unwrapping them (`__wrapped__`), and a finder that silently skipped them would
make this test pass on nothing.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import accounts_job
import pytest

# Modules whose examples must be found and run, not just not fail.
MUST_RUN = ("accounts_job.kernels.bitmaps", "accounts_job.io.schemas")


def modules_with_examples() -> list[str]:
    """Every module of the package whose source holds `>>>`, read without importing it."""
    found = []

    def failed(name: str) -> None:  # a subpackage that does not import is not skipped
        raise ImportError(f"cannot import {name} to look for its examples")

    for info in pkgutil.walk_packages(accounts_job.__path__, "accounts_job.", onerror=failed):
        spec = importlib.util.find_spec(info.name)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        if ">>>" in Path(spec.origin).read_text(encoding="utf-8"):
            found.append(info.name)
    return sorted(found)


MODULES = modules_with_examples()


def test_the_walk_finds_the_kernels_examples() -> None:
    assert set(MUST_RUN) <= set(MODULES), MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = finder.find(module, name)
    assert tests, f"{name} holds '>>>' but doctest finds no example in it"
    for test in tests:
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples failed"
    if name in MUST_RUN:
        assert results.attempted > 0


def test_numba_kernels_examples_are_found_through_the_dispatcher() -> None:
    """Each example of kernels/bitmaps.py is found under its compiled function's name."""
    from accounts_job.kernels import bitmaps

    found = {
        test.name.rsplit(".", 1)[1]: len(test.examples)
        for test in doctest.DocTestFinder().find(bitmaps)
        if test.examples
    }
    assert {"word_bit", "set_bits", "rank_index", "slot_txs"} <= set(found), found
    results = doctest.testmod(bitmaps)
    assert results.failed == 0
    assert results.attempted == sum(found.values()) > 0
