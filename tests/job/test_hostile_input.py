"""Hostile input: lines of any length, any bytes in rejected lines, inputs that are not files.

- docs/rules.md §2.1: a line of 1 MiB or more is too long: `malformed_row`, its raw cut
  to its first MAX_LINE_BYTES bytes, and memory stays bounded however long it is (the
  header line too, and the blank lines before it);
- §5.2: a rejected line's raw is its exact bytes: binary in Parquet and in the API,
  escaped text in CSV that no spreadsheet runs as a formula and that reads back exactly;
- §2.10, §6: an input that is not a file, a pipe or a URL (a socket) is refused (66),
  and a device of endless binary data (65), before any output is opened; pipes are read
  (tests/job/test_inputs.py).
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

import accounts_job
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from accounts_job.distributed.sharded import InProcess, process_sharded
from accounts_job.engine.parser import DEFAULT_BATCH_SIZE
from accounts_job.errors import FormError, HeaderError, InputError
from accounts_job.explore import read_rejects
from accounts_job.io import blocks
from accounts_job.io.blocks import MAX_LINE_BYTES
from accounts_job.io.rawtext import escape_raw, unescape_raw
from accounts_job.io.writers import RejectsWriter
from hypothesis import given, settings
from hypothesis import strategies as st
from support.helpers import HEADER, D, run_path, run_script
from support.model import ModelHeaderError, simulate
from support.strategies import csv_files

MIB = 1 << 20

# --- Long lines -------------------------------------------------------------------------


def long_lines_file(path: Path) -> list[bytes]:
    """A file with long lines around the limit; returns its lines (without LFs)."""
    lines = [
        HEADER.encode(),
        b"deposit,1,1,10",
        b"x" * (3 * MIB),  # too long, and would be unknown_type
        b"deposit,1,2,5" + b" " * (2 * MIB),  # too long, though its fields are fine
        b"deposit,1,3,1".ljust(MAX_LINE_BYTES - 1),  # one byte short of the limit: fine
        b"deposit,1,4,1".ljust(MAX_LINE_BYTES),  # exactly the limit: too long
        b"deposit,1,5,1".ljust(MAX_LINE_BYTES - 1) + b"\r",  # its CR makes it too long
        b"deposit,1,6,2",
        b"deposit,1,7,100" + b" " * (2 * MIB),  # the last line, too long, without an LF
    ]
    path.write_bytes(b"\n".join(lines))
    return lines


@pytest.mark.parametrize(
    ("batch_size", "block_bytes"),
    [(DEFAULT_BATCH_SIZE, None), (2, 4096), (1, 3 * MIB), (3, MIB + 7)],
)
def test_a_line_of_the_limit_or_more_is_malformed_and_its_raw_cut_to_the_limit(
    tmp_path, batch_size, block_bytes
):
    path = tmp_path / "long.csv"
    lines = long_lines_file(path)
    run = run_path(path, batch_size, block_bytes)
    too_long = [3, 4, 6, 7, 9]
    assert run.rejects == [(n, "malformed_row") for n in too_long]
    assert run.raw == [lines[n - 1][:MAX_LINE_BYTES] for n in too_long]
    assert all(len(raw) == MAX_LINE_BYTES for raw in run.raw)  # how a reader tells
    assert run.accounts == {1: (D("13"), D("0"), D("13"), False)}
    assert run.summary.rows_read == 8


def test_long_lines_read_back_from_rejects_files_and_cluster_runs(tmp_path):
    path = tmp_path / "long.csv"
    lines = long_lines_file(path)
    expected = [lines[n - 1][:MAX_LINE_BYTES] for n in (3, 4, 6, 7, 9)]
    for suffix in ("csv", "parquet"):
        out = tmp_path / f"rejects.{suffix}"
        accounts_job.process(path, rejects_to=out)
        assert read_rejects(out).get_column("raw").to_list() == expected
    one = accounts_job.process(path)
    sharded = process_sharded(path, InProcess(), 3, chunk_bytes=MIB // 2)
    assert sharded.rejects.equals(one.rejects)
    assert sharded.accounts_table.equals(one.accounts_table)


# Peak memory of a run, from inside a fresh process: a small run first (so the imports and
# kernels are in), then the run to measure; the growth between them is the run's. With
# `warm` only the small run: it compiles the kernels onto the disk cache if they are not
# there yet, since compiling costs more memory than the run to measure.
PEAK = """
import resource, sys, accounts_job
accounts_job.process(sys.argv[1], rejects_to=sys.argv[3])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if sys.argv[4] == "measure":
    accounts_job.process(sys.argv[2], rejects_to=sys.argv[3])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024)
"""


def test_a_50_mb_line_costs_no_more_memory_than_a_block(tmp_path):
    """The reader skips the rest of an over-long line instead of growing its buffers to
    hold it (before: buffers doubled to 64 MiB each, and the raw kept whole)."""
    small = tmp_path / "small.csv"
    small.write_bytes(f"{HEADER}\ndeposit,1,1,1\nbogus\n".encode())
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:
        f.write(f"{HEADER}\ndeposit,1,1,1\n".encode())
        f.write(b"=" * (50 * MIB) + b"\n")
        f.write(b"deposit,1,2,2\n")
    for step in ("warm", "measure"):
        result = subprocess.run(
            [sys.executable, "-c", PEAK, small, big, tmp_path / "rejects.csv", step],
            capture_output=True,
            timeout=300,
            check=True,
        )
    growth = int(result.stdout)
    # Two 8 MiB read buffers and a 1 MiB raw: about 20 MiB. A line kept whole costs 50 MiB
    # several times over (200 MiB before the line limit).
    assert growth < 64 * MIB, f"the run grew the process by {growth / MIB:.0f} MiB"
    (raw,) = read_rejects(tmp_path / "rejects.csv").get_column("raw").to_list()
    assert raw == b"=" * MAX_LINE_BYTES


def test_the_header_line_is_bounded_and_its_error_short(tmp_path):
    path = tmp_path / "zeros.csv"
    path.write_bytes(b"\0" * (5 * MIB))  # no LF anywhere: /dev/zero in small
    with pytest.raises(FormError, match="looks like binary data") as caught:
        accounts_job.process(path)  # told from its first bytes (docs/rules.md §2.10)
    assert len(str(caught.value)) < 300
    path.write_bytes(b"x" * (5 * MIB))  # text, but no LF anywhere
    with pytest.raises(HeaderError, match="header on line 1 is too long") as caught:
        accounts_job.process(path)
    assert len(str(caught.value)) < 300
    path.write_bytes(b"type,client,tx" + b"," * (2 * MIB) + b"\n")
    with pytest.raises(HeaderError, match="too long") as caught:
        accounts_job.process(path)
    assert len(str(caught.value)) < 300


def test_a_header_error_does_not_echo_a_long_header(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("type,client," + "x" * 5000 + "\ndeposit,1,1,1\n")
    with pytest.raises(HeaderError, match="lacks required column tx") as caught:
        accounts_job.process(path)
    assert len(str(caught.value)) < 200
    assert "…" in str(caught.value)


def test_more_than_1_mib_of_blank_lines_is_no_header_in_the_first_mib(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_bytes(b"\n" * (MIB + 1) + f"{HEADER}\ndeposit,1,1,1\n".encode())
    with pytest.raises(HeaderError, match="no header in the first 1 MiB"):
        accounts_job.process(path)
    path.write_bytes(b" " * (3 * MIB))  # one blank line, never ended
    with pytest.raises(HeaderError, match="no header in the first 1 MiB"):
        accounts_job.process(path)
    path.write_bytes(b"\n" * MIB + f"{HEADER}\ndeposit,1,1,1\n".encode())  # 1 MiB: fine
    run = run_path(path)
    assert run.accounts == {1: (D("1"), D("0"), D("1"), False)}
    assert run.summary.blank_lines == MIB


class CountingFile(io.FileIO):
    """A file that counts the reads made of it."""

    reads = 0

    def read(self, size: int = -1) -> bytes:
        CountingFile.reads += 1
        return super().read(size)

    def readinto(self, buffer) -> int:  # type: ignore[override]
        CountingFile.reads += 1
        return super().readinto(buffer)


def test_blank_lines_before_the_header_are_read_in_blocks(tmp_path, monkeypatch):
    """A million blank lines before the header: a few dozen reads per pass, not one per
    byte (before: the block reader skipped them with readline on an unbuffered file)."""
    path = tmp_path / "blank.csv"
    path.write_bytes(b"\n" * 1_000_000 + f"{HEADER}\ndeposit,1,1,1\nbogus\n".encode())
    monkeypatch.setattr(blocks, "open_input", lambda name, buffered=False: CountingFile(name))
    CountingFile.reads = 0
    run = run_path(path)
    assert CountingFile.reads < 200
    assert run.rejects == [(1_000_003, "unknown_type")]
    assert run.summary.blank_lines == 1_000_000


def with_long_lines(data: bytes, draw, limit: int) -> bytes:
    """`data` with lines around `limit` bytes long put in at random places."""
    lines = data.split(b"\n")
    for _ in range(draw(st.integers(1, 4))):
        size = draw(st.integers(limit - 2, 3 * limit))
        body = draw(st.sampled_from([b"deposit,1,9,1", b"x", b"dispute,1,9", b"\t", b"\xff\0"]))
        pad = draw(st.sampled_from([b" ", b"x", b"\r", b"1"]))
        line = (body + pad * size)[:size]
        lines.insert(draw(st.integers(0, len(lines))), line)
    return b"\n".join(lines)


@settings(max_examples=settings.default.max_examples // 2)
@given(
    data=csv_files(max_rows=20),
    limit=st.integers(12, 60),
    batch_size=st.integers(1, 6),
    block_bytes=st.integers(1, 150),
    extra=st.data(),
)
def test_long_lines_agree_with_the_model_at_any_limit_and_block_size(
    data, limit, batch_size, block_bytes, extra
):
    """With a small line limit, long lines land everywhere: across blocks, at a file's
    end, before the header; engine, model and a sharded run agree, raw included."""
    data = with_long_lines(data, extra.draw, limit)
    with (
        tempfile.TemporaryDirectory() as folder,
        mock.patch.object(blocks, "MAX_LINE_BYTES", limit),
    ):
        path = Path(folder) / "in.csv"
        path.write_bytes(data)
        try:
            expected = simulate(data, max_line=limit)
        except ModelHeaderError:
            with pytest.raises(HeaderError):
                run_path(path, batch_size, block_bytes)
            return
        got = run_path(path, batch_size, block_bytes)
        assert got.rejects == expected.rejects
        assert got.raw == expected.raw
        assert got.accounts == expected.accounts
        assert got.summary.rows_read == expected.rows_read
        assert got.summary.blank_lines == expected.blank
        one = accounts_job.process(path)
        sharded = process_sharded(path, InProcess(), 2, chunk_bytes=block_bytes)
        assert sharded.rejects.equals(one.rejects)
        assert sharded.accounts_table.equals(one.accounts_table)


# --- Rejects keep the exact bytes -------------------------------------------------------

HOSTILE_ROWS = [
    b'=HYPERLINK("http://x";"y"),1,1,1',
    b"+1+1,1,2,1",
    b"-2+3,1,3,1",
    b"@SUM(A1),1,4,1",
    b"  =1,1,5,1",
    b"'quoted,1,6,1",
    b"\xef\xbc\x9d1,1,7,1",  # a full-width equals sign
    b"\tdeposit,1,8,x",
    b"deposit,1,9,\xff\xfe",
    b"deposit,1,10,1,\0",
    b"C:\\temp,1,11,1",
    b"caf\xc3\xa9,1,12,1",
    b"\xc2\x85next,1,13,1",  # a C1 control character
    b"\x1b[31mred,1,14,1",
]
# docs/rules.md §5.2: each row's raw as the CSV holds it.
HOSTILE_CSV = [
    '\'=HYPERLINK("http://x";"y"),1,1,1',
    "'+1+1,1,2,1",
    "'-2+3,1,3,1",
    "'@SUM(A1),1,4,1",
    "'  =1,1,5,1",
    "''quoted,1,6,1",
    "'\uff1d1,1,7,1",
    "\\x09deposit,1,8,x",
    "deposit,1,9,\\xFF\\xFE",
    "deposit,1,10,1,\\x00",
    "C:\\\\temp,1,11,1",
    "caf\u00e9,1,12,1",
    "\\xC2\\x85next,1,13,1",
    "\\x1B[31mred,1,14,1",
]


def hostile_rows_file(path: Path) -> None:
    path.write_bytes(f"{HEADER}\n".encode() + b"\r\n".join(HOSTILE_ROWS) + b"\r\n")


def test_rejects_csv_escapes_formulas_and_bytes_as_documented(tmp_path):
    path = tmp_path / "in.csv"
    hostile_rows_file(path)
    result = run_script("run", path, "--rejects", tmp_path / "r.csv", "--quiet")
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "r.csv").read_bytes().decode("utf-8")  # valid UTF-8, whatever came in
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["line", "reason", "raw"]
    assert [raw for _, _, raw in rows[1:]] == HOSTILE_CSV
    for raw in HOSTILE_CSV:
        assert raw[0] not in "=+-@\t\r\uff1d"  # nothing a spreadsheet would run
        assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in raw)
    assert [unescape_raw(raw) for raw in HOSTILE_CSV] == HOSTILE_ROWS


def test_rejects_keep_the_exact_bytes_in_parquet_in_the_api_and_read_back(tmp_path):
    path = tmp_path / "in.csv"
    hostile_rows_file(path)
    result = accounts_job.process(path)
    assert result.rejects.get_column("raw").to_list() == HOSTILE_ROWS
    accounts_job.process(path, rejects_to=tmp_path / "r.parquet")
    assert pq.read_table(tmp_path / "r.parquet").column("raw").to_pylist() == HOSTILE_ROWS
    accounts_job.process(path, rejects_to=tmp_path / "r.csv")
    for name in ("r.parquet", "r.csv"):
        assert read_rejects(tmp_path / name).equals(result.rejects)
    sharded = process_sharded(path, InProcess(), 2, chunk_bytes=64)
    assert sharded.rejects.equals(result.rejects)


def test_read_rejects_takes_an_older_parquet_whose_raw_is_text(tmp_path):
    table = pa.table(
        {
            "line": pa.array([2], pa.uint64()),
            "reason": ["unknown_type"],
            "raw": ["caf\u00e9,1,1,1"],
        }
    )
    pq.write_table(table, tmp_path / "old.parquet")
    assert read_rejects(tmp_path / "old.parquet").get_column("raw").to_list() == [
        "caf\u00e9,1,1,1".encode()
    ]


def test_unescape_refuses_what_escaping_never_writes():
    for text in ("\\", "a\\b", "\\x4", "\\xZZ"):
        with pytest.raises(ValueError, match="not an escaped raw line"):
            unescape_raw(text)


lines_without_lf = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))


@given(st.lists(lines_without_lf | st.text(max_size=20).map(str.encode), max_size=20))
def test_any_bytes_survive_the_rejects_csv_exactly(raws):
    """Arbitrary bytes without LF -> escape -> CSV file -> read -> unescape: the same."""
    table = pa.table(
        {
            "line": pa.array(range(1, len(raws) + 1), pa.uint64()),
            "reason": pa.array(["malformed_row"] * len(raws)),
            "raw": pa.array(raws, pa.large_binary()),
        }
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.csv"
        writer = RejectsWriter(path)
        writer.write(table)
        writer.commit()
        assert read_rejects(path).get_column("raw").to_list() == raws
        text = path.read_bytes().decode("utf-8")
        fields = [row[2] for row in csv.reader(io.StringIO(text, newline=""))][1:]
    assert fields == [escape_raw(raw) for raw in raws]
    assert [unescape_raw(field) for field in fields] == raws
    for field in fields:
        assert not field.lstrip(" ").startswith(("=", "+", "-", "@")) or field[0] == "'"


# --- A NUL byte past the first batch and block -----------------------------------------


@pytest.mark.parametrize(("batch_size", "block_bytes"), [(3, 64), (2, 100), (5, None), (1, 40)])
def test_a_nul_row_in_a_later_batch_and_block_is_malformed_on_its_line(
    tmp_path, batch_size, block_bytes
):
    """The NUL sits in an ignored column, where the parser alone accepts the row."""
    rows = [f"deposit,1,{tx},1,note" for tx in range(1, 40)]
    rows[29] = "deposit,1,30,1,no\0te"  # line 31
    path = tmp_path / "in.csv"
    path.write_bytes(("type,client,tx,amount,memo\n" + "\n".join(rows) + "\n").encode())
    run = run_path(path, batch_size, block_bytes)
    assert run.rejects == [(31, "malformed_row")]
    assert run.raw == [b"deposit,1,30,1,no\0te"]
    assert run.accounts == {1: (D("38"), D("0"), D("38"), False)}


# --- Inputs that are not files ----------------------------------------------------------


def test_a_device_of_binary_data_is_refused_with_65(tmp_path):
    # Read as a stream, like a pipe: what it holds is told from its first bytes, so an
    # endless stream of NULs is refused at once, not spooled for ever.
    with pytest.raises(FormError, match="looks like binary data"):
        accounts_job.process("/dev/zero")


def test_a_socket_input_is_refused_with_66(tmp_path):
    import socket

    path = tmp_path / "in.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        with pytest.raises(InputError, match="is a socket"):
            accounts_job.process(path)


def test_an_output_in_a_folder_that_takes_no_files_says_so(tmp_path):
    data = tmp_path / "in.csv"
    data.write_text(f"{HEADER}\ndeposit,1,1,1\n")
    result = run_script("run", data, "--out", "/proc/accounts.csv", "--quiet")
    assert result.returncode == 73
    assert b"cannot create a file in /proc" in result.stderr
    assert b"does not exist" not in result.stderr
