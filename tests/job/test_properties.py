"""Property tests: the engine agrees with the reference model on generated files.

The files (support/strategies.py) favour what makes the rules interesting: a handful of
clients (0 and 65535 among them) and tx ids, so duplicates, forward and cross-client
references, re-disputes and chargebacks (locked accounts) are common; amounts near the
int64 limit; and every input form docs/rules.md §2 allows, plus garbage. Each file runs at
several batch sizes, which puts batch boundaries between a deposit and the rows that name
it.

Set HYPOTHESIS_PROFILE=thorough for many more examples (tests/conftest.py).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import tempfile
from collections import Counter
from decimal import Decimal
from pathlib import Path

import accounts_job
import zstandard
from accounts_job.engine.parser import DEFAULT_BATCH_SIZE
from accounts_job.errors import HeaderError
from hypothesis import given, settings
from hypothesis import strategies as st
from support.helpers import run_path
from support.model import (
    MAX_UNITS,
    ModelHeaderError,
    raw_of,
    read_header,
    simulate,
    simulate_files,
    split_raw_lines,
)
from support.strategies import csv_files


def run_bytes(data: bytes, sizes):
    """Run the engine on `data` once per size: a batch size, or a (batch size, block
    bytes) pair. The runs, or a HeaderError per size."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.csv"
        path.write_bytes(data)
        runs = []
        for size in sizes:
            batch_size, block_bytes = size if isinstance(size, tuple) else (size, None)
            try:
                runs.append(run_path(path, batch_size, block_bytes))
            except HeaderError as e:
                runs.append(e)
        return runs


def check_against_model(data: bytes, batch_sizes) -> None:
    try:
        expected = simulate(data)
    except ModelHeaderError:
        expected = None
    for batch_size, got in zip(batch_sizes, run_bytes(data, batch_sizes), strict=True):
        if expected is None:
            assert isinstance(got, HeaderError), f"batch_size={batch_size}: expected HeaderError"
            continue
        assert not isinstance(got, Exception), f"batch_size={batch_size}: {got}"
        assert got.rejects == expected.rejects, f"batch_size={batch_size}"
        assert got.raw == expected.raw, f"batch_size={batch_size}"
        assert got.accounts == expected.accounts, f"batch_size={batch_size}"
        summary = got.summary
        assert summary.rows_read == expected.rows_read
        assert summary.blank_lines == expected.blank
        assert {k: v for k, v in summary.applied.items() if v} == dict(expected.applied)
        assert {k: v for k, v in summary.rejected.items() if v} == dict(
            Counter(reason for _, reason in expected.rejects)
        )
        assert summary.accounts == len(expected.accounts)
        assert summary.locked_accounts == sum(a[3] for a in expected.accounts.values())


@given(data=csv_files(), random_batch=st.integers(4, 40))
def test_engine_agrees_with_model_at_every_batch_size(data, random_batch):
    check_against_model(data, [1, 2, 3, random_batch, DEFAULT_BATCH_SIZE])


@given(data=csv_files(), block_bytes=st.integers(1, 200), batch_size=st.integers(1, 40))
def test_engine_agrees_with_model_at_every_block_size(data, block_bytes, batch_size):
    """Tiny read blocks: lines cut at every place, lines longer than the buffer, the
    first pass's parts smaller than a line."""
    check_against_model(data, [(batch_size, block_bytes), (DEFAULT_BATCH_SIZE, 8)])


@given(data=csv_files(max_rows=60))
def test_engine_agrees_with_model_in_one_batch(data):
    check_against_model(data, [DEFAULT_BATCH_SIZE])


@given(data=csv_files(max_rows=40), batch_size=st.sampled_from([1, 2, 7, DEFAULT_BATCH_SIZE]))
def test_conservation(data, batch_size):
    """Invariants that hold whatever the rules decide, checked on the engine alone."""
    (got,) = run_bytes(data, [batch_size])
    if isinstance(got, HeaderError):
        return
    s = got.summary
    lines = split_raw_lines(data)
    assert s.rows_read == len(lines) - 1  # every physical line but the header
    assert s.rows_read == s.applied_total + s.rejected_total + s.blank_lines
    assert s.rejected_total == len(got.rejects)
    numbers = [line for line, _ in got.rejects]
    assert numbers == sorted(set(numbers))
    for number, raw in zip(numbers, got.raw, strict=True):
        assert raw == raw_of(lines[number - 1])  # the exact bytes (docs/rules.md §5.2)
    assert list(got.accounts) == sorted(got.accounts)
    for available, held, total, _ in got.accounts.values():
        assert total == available + held
        assert held >= 0
        assert abs(available) <= Decimal(MAX_UNITS).scaleb(-4)
        assert total.as_tuple().exponent == -4
    assert s.locked_accounts == sum(a[3] for a in got.accounts.values())


def render_amount(draw, units: int) -> str:
    """`units` of 0.0001 written in one of the plain decimal forms docs/rules.md §2.8 allows."""
    whole, frac = divmod(units, 10_000)
    frac_text = f"{frac:04d}".rstrip("0") + "0" * draw(st.integers(0, 3))
    whole_text = "0" * draw(st.integers(0, 2)) + (str(whole) if whole else "")
    if not frac_text.strip("0") and draw(st.booleans()):
        return (whole_text or "0") + draw(st.sampled_from(["", "."]))
    return whole_text + "." + frac_text


@settings(max_examples=settings.default.max_examples // 2)
@given(st.data())
def test_amount_grammar_is_exact(tmp_path_factory, data):
    """Any amount in a plain form is read exactly; a non-zero fifth place is refused."""
    units = data.draw(
        st.lists(st.integers(1, MAX_UNITS) | st.integers(1, 10**6), min_size=1, max_size=40)
    )
    lines, expected, expected_rejects = [], {}, []
    for client, value in enumerate(units):
        text = render_amount(data.draw, value)
        if data.draw(st.integers(1, 4)) == 1:  # a non-zero digit past the fourth place
            digit = data.draw(st.integers(1, 9))
            text = (text if "." in text else text + ".") + f"0000{digit}"
            expected_rejects.append((client + 2, "invalid_amount"))
        else:
            expected[client] = (Decimal(value).scaleb(-4),) * 2
        lines.append(f"deposit,{client},{client},{text}")
    path = tmp_path_factory.mktemp("amounts") / "in.csv"
    path.write_text("type,client,tx,amount\n" + "\n".join(lines) + "\n")
    got = run_path(path)
    assert got.rejects == expected_rejects
    assert {c: (a[0], a[2]) for c, a in got.accounts.items()} == expected


def test_generator_makes_interesting_files():
    """Guard the generator, not the engine: over many files every rule gets exercised."""
    seen: Counter = Counter()

    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(csv_files())
    def collect(data):
        try:
            outcome = simulate(data)
        except ModelHeaderError:
            seen["header_error"] += 1
            return
        seen.update(reason for _, reason in outcome.rejects)
        seen["locked"] += sum(a[3] for a in outcome.accounts.values())
        seen.update(k for k, v in outcome.applied.items() if v)

    collect()
    for reason in [
        "duplicate_tx",
        "unknown_tx",
        "client_mismatch",
        "not_disputable",
        "already_disputed",
        "not_disputed",
        "account_locked",
        "insufficient_funds",
        "overflow",
        "malformed_row",
        "invalid_amount",
        "locked",
        "resolve",
        "chargeback",
        "header_error",
    ]:
        assert seen[reason] > 0, (reason, seen)


# --- Inputs as they arrive (docs/rules.md §2.10): compressed, several in one run ----------

PACK = {
    "csv": lambda b: b,
    "gzip": gzip.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    "bz2": bz2.compress,
    "xz": lzma.compress,
}


def check_inputs_against_model(files: list[bytes], forms: list[str], batch_size: int) -> None:
    """The engine over `files`, each packed in its form, as one run, against the model
    over the plain files as one stream (each file numbering its own lines)."""
    try:
        expected = simulate_files(files)
    except ModelHeaderError:
        expected = None
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for k, (data, form) in enumerate(zip(files, forms, strict=False)):
            path = Path(folder) / f"in-{k}"
            path.write_bytes(PACK[form](data))
            paths.append(path)
        try:
            result = accounts_job.process(paths, batch_size=batch_size)
        except HeaderError:
            assert expected is None, "the engine found no header where the model did"
            return
    assert expected is not None, "the model found no header where the engine did"
    rejects = result.rejects
    if len(files) == 1:
        got = [(line, reason) for line, reason, _ in rejects.iter_rows()]
    else:
        index = {str(p): k for k, p in enumerate(paths)}
        got = [(index[f], line, reason) for f, line, reason, _ in rejects.iter_rows()]
    assert got == expected.rejects
    assert list(rejects.get_column("raw")) == expected.raw
    accounts = {c: (a, h, t, lk) for c, a, h, t, lk in result.accounts.iter_rows()}
    assert accounts == expected.accounts
    summary = result.summary
    assert summary.rows_read == expected.rows_read
    assert summary.blank_lines == expected.blank
    assert {k: v for k, v in summary.applied.items() if v} == dict(expected.applied)
    assert [i["form"] for i in summary.inputs] == forms[: len(files)]


# A run over several inputs costs a few processes' worth of opening and spooling: fewer
# examples (HYPOTHESIS_PROFILE=thorough gives many).
FEWER = settings.default.max_examples // 4


@settings(max_examples=FEWER)
@given(
    files=st.lists(csv_files(max_rows=15), min_size=1, max_size=3),
    forms=st.lists(st.sampled_from(list(PACK)), min_size=3, max_size=3),
    batch_size=st.sampled_from([1, 3, DEFAULT_BATCH_SIZE]),
)
def test_several_inputs_in_any_form_agree_with_the_model(files, forms, batch_size):
    check_inputs_against_model(files, forms, batch_size)


@settings(max_examples=FEWER)
@given(
    data=csv_files(max_rows=40),
    cuts=st.lists(st.integers(0, 40), max_size=3),
    forms=st.lists(st.sampled_from(list(PACK)), min_size=4, max_size=4),
    batch_size=st.sampled_from([1, 2, 5, DEFAULT_BATCH_SIZE]),
)
def test_a_file_split_into_several_inputs_agrees_with_the_model(data, cuts, forms, batch_size):
    """A generated file cut into parts, each part after a copy of the file's head (its
    blank lines and header): the run over the parts is the model's stream of them."""
    pieces = data.split(b"\n")
    lines = [p + b"\n" for p in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])
    try:
        header_index = read_header(split_raw_lines(data))[0]
    except ModelHeaderError:
        return
    head, body = lines[: header_index + 1], lines[header_index + 1 :]
    if head and not head[-1].endswith(b"\n"):
        return  # the header is the last line: nothing to cut
    bounds = sorted({min(c, len(body)) for c in cuts})
    parts = [body[a:b] for a, b in zip([0, *bounds], [*bounds, len(body)], strict=True)]
    files = [b"".join(head + part) for part in parts]
    check_inputs_against_model(files, forms[: len(files)], batch_size)
