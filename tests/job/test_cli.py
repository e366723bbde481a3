"""The `accounts-job` command line: exit statuses, streams, output files, whole-or-nothing.

Expected values come from docs/rules.md (§5 outputs, §6 fatal errors and exit statuses, §9
the worked example), not from running the program.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import accounts_job
import accounts_job.engine.ledger
import accounts_job.io.blocks
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from accounts_job import process
from accounts_job.cli import app
from support.example import (
    WORKED_EXAMPLE,
    WORKED_EXAMPLE_CSV,
    WORKED_EXAMPLE_REJECTS_RAW,
    WORKED_EXAMPLE_ROWS,
)
from support.helpers import REASONS, fail_the_second_pass, run_on_terminal, run_script
from typer.testing import CliRunner

# docs/rules.md §9, the worked example: its input, accounts and rejected rows.
EXAMPLE = WORKED_EXAMPLE
EXPECTED_CSV = WORKED_EXAMPLE_CSV
EXPECTED_ROWS = WORKED_EXAMPLE_ROWS
EXPECTED_REJECTS = WORKED_EXAMPLE_REJECTS_RAW
# Counted by hand from the worked example: 9 rows after the header, 5 applied, 4 rejected.
EXPECTED_APPLIED = {"deposit": 2, "withdrawal": 1, "dispute": 1, "resolve": 0, "chargeback": 1}
EXPECTED_REJECTED = {
    reason: int(reason in {r for _, r, _ in EXPECTED_REJECTS}) for reason in REASONS
}
# Summary keys that do not depend on timing.
STABLE_SUMMARY_KEYS = (
    "rows_read",
    "applied",
    "rejected",
    "blank_lines",
    "accounts",
    "locked_accounts",
    "input",
    "input_bytes",
    "version",
)
ERROR_PREFIX = "accounts-job: error: "

runner = CliRunner()


# ---------------------------------------------------------------------------- helpers


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def listing(folder: Path) -> set[str]:
    """Every name in `folder`, hidden ones (temporary files) included."""
    return {p.name for p in folder.iterdir()}


def assert_one_error_line(stderr: str) -> str:
    """Fatal errors print exactly one line, `accounts-job: error: ...`, and no traceback."""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(ERROR_PREFIX), stderr
    assert len(lines[0]) > len(ERROR_PREFIX) + 5
    return lines[0]


def rejects_from_csv(path: Path) -> list[tuple[int, str, str]]:
    text = path.read_bytes().decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["line", "reason", "raw"]
    return [(int(line), reason, raw) for line, reason, raw in rows[1:]]


def rejects_from_parquet(path: Path) -> list[tuple[int, str, str]]:
    table = pq.read_table(path)
    assert table.column_names == ["line", "reason", "raw"]
    assert pa.types.is_integer(table.schema.field("line").type)
    assert pa.types.is_binary(table.schema.field("raw").type)  # the exact bytes
    return [(r["line"], str(r["reason"]), r["raw"].decode()) for r in table.to_pylist()]


def accounts_from_parquet(path: Path) -> list[tuple]:
    table = pq.read_table(path)
    assert table.column_names == ["client", "available", "held", "total", "locked"]
    return [
        (r["client"], r["available"], r["held"], r["total"], r["locked"]) for r in table.to_pylist()
    ]


def stable(summary: dict) -> dict:
    return {k: summary[k] for k in STABLE_SUMMARY_KEYS}


# ---------------------------------------------------------------------------- stdout, --out


def test_stdout_is_the_worked_example_output(example: Path) -> None:
    result = invoke("run", example)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == EXPECTED_CSV


def test_rejected_rows_do_not_change_the_exit_status(tmp_path: Path) -> None:
    path = write_text(tmp_path / "bad.csv", "type,client,tx,amount\nrefund,1,1,1\ndeposit,x,2,1\n")
    result = invoke("run", path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "client,available,held,total,locked\n"


def test_header_only_input_gives_header_only_output(tmp_path: Path) -> None:
    path = write_text(tmp_path / "empty.csv", "type,client,tx,amount\n")
    result = invoke("run", path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "client,available,held,total,locked\n"


def test_out_csv(example: Path, outdir: Path) -> None:
    name = "accounts.csv"
    target = outdir / name
    result = invoke("run", example, "--out", target)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert target.read_bytes().decode("utf-8") == EXPECTED_CSV
    assert listing(outdir) == {name}


@pytest.mark.parametrize("name", ["accounts.parquet", "accounts.pq"])
def test_out_parquet_by_suffix(example: Path, outdir: Path, name: str) -> None:
    target = outdir / name
    result = invoke("run", example, "--out", target)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert accounts_from_parquet(target) == EXPECTED_ROWS
    assert listing(outdir) == {name}


def test_short_out_option(example: Path, outdir: Path) -> None:
    result = invoke("run", example, "-o", outdir / "a.csv")
    assert result.exit_code == 0, result.stderr
    assert (outdir / "a.csv").read_text() == EXPECTED_CSV


def test_format_parquet_overrides_csv_suffix(example: Path, outdir: Path) -> None:
    target = outdir / "accounts.csv"
    result = invoke("run", example, "--out", target, "--format", "parquet")
    assert result.exit_code == 0, result.stderr
    assert target.read_bytes()[:4] == b"PAR1"
    assert accounts_from_parquet(target) == EXPECTED_ROWS


def test_format_csv_overrides_parquet_suffix(example: Path, outdir: Path) -> None:
    target = outdir / "accounts.parquet"
    result = invoke("run", example, "--out", target, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert target.read_text() == EXPECTED_CSV


@pytest.mark.parametrize("name", ["accounts.txt", "accounts", "accounts.csv.gz"])
def test_format_names_the_format_of_an_unknown_suffix(
    example: Path, outdir: Path, name: str
) -> None:
    target = outdir / name
    result = invoke("run", example, "--out", target, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert target.read_text() == EXPECTED_CSV


def test_format_csv_to_stdout(example: Path) -> None:
    result = invoke("run", example, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == EXPECTED_CSV


@pytest.mark.parametrize("batch_size", ["1", "2", "3"])
def test_batch_size_does_not_change_the_results(
    example: Path, outdir: Path, batch_size: str
) -> None:
    result = invoke(
        "run", example, "--batch-size", batch_size, "--rejects", outdir / "r.csv", "--quiet"
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == EXPECTED_CSV
    assert rejects_from_csv(outdir / "r.csv") == EXPECTED_REJECTS

    default = invoke("run", example, "--rejects", outdir / "r_default.csv", "--quiet")
    assert default.stdout == result.stdout
    assert (outdir / "r_default.csv").read_bytes() == (outdir / "r.csv").read_bytes()


# ---------------------------------------------------------------------------- --rejects


def test_rejects_csv(example: Path, outdir: Path) -> None:
    target = outdir / "rejects.csv"
    result = invoke("run", example, "--rejects", target)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == EXPECTED_CSV
    assert target.read_bytes().startswith(b"line,reason,raw\n")
    assert rejects_from_csv(target) == EXPECTED_REJECTS


@pytest.mark.parametrize("name", ["rejects.parquet", "rejects.pq"])
def test_rejects_parquet(example: Path, outdir: Path, name: str) -> None:
    target = outdir / name
    result = invoke("run", example, "--rejects", target)
    assert result.exit_code == 0, result.stderr
    assert rejects_from_parquet(target) == EXPECTED_REJECTS


def test_rejects_file_is_written_even_with_no_rejects(tmp_path: Path, outdir: Path) -> None:
    path = write_text(tmp_path / "clean.csv", "type,client,tx,amount\ndeposit,1,1,1.5\n")
    for name in ("r.csv", "r.parquet"):
        result = invoke("run", path, "--rejects", outdir / name)
        assert result.exit_code == 0, result.stderr
        assert result.stdout == "client,available,held,total,locked\n1,1.5000,0.0000,1.5000,false\n"
    assert (outdir / "r.csv").read_text() == "line,reason,raw\n"
    table = pq.read_table(outdir / "r.parquet")
    assert table.num_rows == 0
    assert table.column_names == ["line", "reason", "raw"]


# ---------------------------------------------------------------------------- summary


def test_summary_json_matches_the_python_api(example: Path, outdir: Path) -> None:
    target = outdir / "summary.json"
    result = invoke("run", example, "--summary", target)
    assert result.exit_code == 0, result.stderr
    written = json.loads(target.read_text())
    api = process(example).summary.to_dict()
    assert stable(written) == stable(api)
    # And both hold what the worked example of docs/rules.md §9 says.
    assert written["rows_read"] == 9
    assert written["applied"] == EXPECTED_APPLIED
    assert written["rejected"] == EXPECTED_REJECTED
    assert written["blank_lines"] == 0
    assert written["accounts"] == 2
    assert written["locked_accounts"] == 1
    assert written["input"] == str(example)
    assert written["input_bytes"] == len(EXAMPLE.encode())
    assert written["version"] == accounts_job.__version__
    assert (
        written["rows_read"]
        == (sum(written["applied"].values()) + sum(written["rejected"].values()))
        + written["blank_lines"]
    )


def test_summary_json_counts_blank_lines(tmp_path: Path, outdir: Path) -> None:
    text = EXAMPLE.replace("dispute,1,1\n", "dispute,1,1\n\n\n")
    path = write_text(tmp_path / "blank.csv", text)
    target = outdir / "summary.json"
    result = invoke("run", path, "--summary", target, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == EXPECTED_CSV
    written = json.loads(target.read_text())
    assert stable(written) == stable(process(path).summary.to_dict())
    # 9 rows and 2 blank lines among them: skipped, counted, and rows read.
    assert written["blank_lines"] == 2
    assert written["rows_read"] == 11
    assert sum(written["rejected"].values()) == 4


def test_blank_line_before_the_header(tmp_path: Path, outdir: Path) -> None:
    """docs/rules.md §2.2: the header is the first non-blank line."""
    path = write_text(tmp_path / "lead.csv", "\n" + EXAMPLE)
    target = outdir / "summary.json"
    result = invoke("run", path, "--summary", target, "--rejects", outdir / "r.csv")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == EXPECTED_CSV
    # Every line moved down by one.
    shifted = [(line + 1, reason, raw) for line, reason, raw in EXPECTED_REJECTS]
    assert rejects_from_csv(outdir / "r.csv") == shifted
    written = json.loads(target.read_text())
    assert written["blank_lines"] == 1
    assert written["rows_read"] == 10


def test_summary_on_stderr(example: Path) -> None:
    result = invoke("run", example)
    assert result.exit_code == 0
    assert result.stdout == EXPECTED_CSV
    text = result.stderr.lower()
    assert re.search(r"^rows read\D*9$", text, re.MULTILINE), text
    for _, reason, _ in EXPECTED_REJECTS:
        assert re.search(rf"\b{reason}\D{{0,20}}\b1\b", text), reason
    assert re.search(r"^accounts\D*2\b.*\blocked\D*1\b", text, re.MULTILINE), text


def test_summary_goes_to_stderr_also_with_out(example: Path, outdir: Path) -> None:
    result = invoke("run", example, "--out", outdir / "a.csv")
    assert result.stdout == ""
    assert "rows read" in result.stderr


def test_quiet_silences_stderr(example: Path) -> None:
    result = invoke("run", example, "--quiet")
    assert result.exit_code == 0
    assert result.stdout == EXPECTED_CSV
    assert result.stderr == ""


def test_quiet_with_every_output(example: Path, outdir: Path) -> None:
    result = invoke(
        "run",
        example,
        "-q",
        "--out",
        outdir / "a.parquet",
        "--rejects",
        outdir / "r.csv",
        "--summary",
        outdir / "s.json",
    )
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == ""
    assert listing(outdir) == {"a.parquet", "r.csv", "s.json"}
    assert accounts_from_parquet(outdir / "a.parquet") == EXPECTED_ROWS
    assert rejects_from_csv(outdir / "r.csv") == EXPECTED_REJECTS
    assert json.loads((outdir / "s.json").read_text())["rows_read"] == 9


def test_quiet_still_reports_a_fatal_error(tmp_path: Path) -> None:
    result = invoke("run", tmp_path / "missing.csv", "--quiet")
    assert result.exit_code == 66
    assert_one_error_line(result.stderr)


# ---------------------------------------------------------------------------- --version


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"accounts-job {metadata.version('accounts-job')}"
    assert accounts_job.__version__ == metadata.version("accounts-job")


# ---------------------------------------------------------------------------- fatal errors


@dataclass(frozen=True)
class Fatal:
    """A run that must fail: its exit status, and how to set it up.

    `setup(tmp_path, outdir, monkeypatch)` returns the arguments after `run`; the outputs
    it names live in `outdir`. `keep` names what the setup itself put into `outdir`.
    """

    code: int
    setup: Callable[[Path, Path, pytest.MonkeyPatch], list[object]]
    keep: frozenset[str] = frozenset()


def all_outputs(
    outdir: Path,
    *,
    out: str | None = "a.csv",
    rejects: str | None = "r.csv",
    summary: str | None = "s.json",
) -> list[object]:
    """--out, --rejects and --summary into `outdir`; a case may rename one (a missing
    folder, a wrong suffix) or leave it out (None)."""
    args: list[object] = []
    for option, name in (("--out", out), ("--rejects", rejects), ("--summary", summary)):
        if name is not None:
            args += [option, outdir / name]
    return args


def _example(tmp_path: Path) -> Path:
    return write_text(tmp_path / "in" / "example.csv", EXAMPLE)


def _input(text: str | bytes) -> Callable[[Path, Path, pytest.MonkeyPatch], list[object]]:
    def setup(tmp_path: Path, outdir: Path, _mp: pytest.MonkeyPatch) -> list[object]:
        path = tmp_path / "in" / "input.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return [path, *all_outputs(outdir)]

    return setup


def _missing_input(tmp_path: Path, outdir: Path, _mp: pytest.MonkeyPatch) -> list[object]:
    return [tmp_path / "in" / "nope.csv", *all_outputs(outdir)]


def _input_is_directory(tmp_path: Path, outdir: Path, _mp: pytest.MonkeyPatch) -> list[object]:
    folder = tmp_path / "in" / "folder.csv"
    folder.mkdir(parents=True)
    return [folder, *all_outputs(outdir)]


def _out_folder_missing(tmp_path: Path, outdir: Path, _mp: pytest.MonkeyPatch) -> list[object]:
    return [_example(tmp_path), *all_outputs(outdir, out="nope/a.csv")]


def _out_is_directory(tmp_path: Path, outdir: Path, _mp: pytest.MonkeyPatch) -> list[object]:
    (outdir / "a.csv").mkdir()
    return [_example(tmp_path), *all_outputs(outdir)]


def _rejects_folder_missing(tmp_path: Path, outdir: Path, _mp: pytest.MonkeyPatch) -> list[object]:
    return [_example(tmp_path), *all_outputs(outdir, rejects="nope/r.csv")]


def _rejects_is_directory(tmp_path: Path, outdir: Path, _mp: pytest.MonkeyPatch) -> list[object]:
    (outdir / "r.csv").mkdir()
    return [_example(tmp_path), *all_outputs(outdir)]


def _summary_folder_missing(tmp_path: Path, outdir: Path, _mp: pytest.MonkeyPatch) -> list[object]:
    return [_example(tmp_path), *all_outputs(outdir, summary="nope/s.json")]


def _summary_is_directory(tmp_path: Path, outdir: Path, _mp: pytest.MonkeyPatch) -> list[object]:
    (outdir / "s.json").mkdir()
    return [_example(tmp_path), *all_outputs(outdir)]


def _unknown_out_suffix(tmp_path: Path, outdir: Path, _mp: pytest.MonkeyPatch) -> list[object]:
    return [_example(tmp_path), *all_outputs(outdir, out="a.txt")]


def _unknown_rejects_suffix(tmp_path: Path, outdir: Path, _mp: pytest.MonkeyPatch) -> list[object]:
    return [_example(tmp_path), *all_outputs(outdir, rejects="r.txt")]


def _parquet_to_stdout(tmp_path: Path, outdir: Path, _mp: pytest.MonkeyPatch) -> list[object]:
    return [_example(tmp_path), "--format", "parquet", *all_outputs(outdir, out=None)]


def _unknown_format(tmp_path: Path, outdir: Path, _mp: pytest.MonkeyPatch) -> list[object]:
    return [_example(tmp_path), "--format", "xlsx", *all_outputs(outdir)]


def _read_fails_mid_file(tmp_path: Path, outdir: Path, mp: pytest.MonkeyPatch) -> list[object]:
    """The disk fails in the second pass, after two small blocks were read (and their
    rejects streamed)."""
    fail_the_second_pass(mp)
    return [_example(tmp_path), "--batch-size", "2", *all_outputs(outdir)]


def _unexpected_bug(tmp_path: Path, outdir: Path, mp: pytest.MonkeyPatch) -> list[object]:
    def broken(self):
        raise RuntimeError("kaput")

    mp.setattr(accounts_job.engine.ledger.Ledger, "accounts", broken)
    return [_example(tmp_path), "--batch-size", "2", *all_outputs(outdir)]


FATAL = {
    "missing_input": Fatal(66, _missing_input),
    "input_is_directory": Fatal(66, _input_is_directory),
    "empty_input": Fatal(65, _input("")),
    "blank_input": Fatal(65, _input("\n  \n\t\r\n")),
    "missing_type_column": Fatal(65, _input("client,tx,amount\n1,1,1.0\n")),
    "missing_tx_column": Fatal(65, _input("type,client,amount\ndeposit,1,1.0\n")),
    "duplicate_column": Fatal(65, _input("type,client,tx,amount, Client \ndeposit,1,1,1,1\n")),
    "duplicate_amount": Fatal(65, _input("type,client,tx,amount,AMOUNT\ndeposit,1,1,1,1\n")),
    "header_not_utf8": Fatal(65, _input(b"\xfftype,client,tx,amount\ndeposit,1,1,1\n")),
    "read_fails_mid_file": Fatal(74, _read_fails_mid_file),
    "out_folder_missing": Fatal(73, _out_folder_missing),
    "out_is_directory": Fatal(73, _out_is_directory, frozenset({"a.csv"})),
    "rejects_folder_missing": Fatal(73, _rejects_folder_missing),
    "rejects_is_directory": Fatal(73, _rejects_is_directory, frozenset({"r.csv"})),
    "summary_folder_missing": Fatal(73, _summary_folder_missing),
    "summary_is_directory": Fatal(73, _summary_is_directory, frozenset({"s.json"})),
    "unknown_out_suffix": Fatal(2, _unknown_out_suffix),
    "unknown_rejects_suffix": Fatal(2, _unknown_rejects_suffix),
    "parquet_to_stdout": Fatal(2, _parquet_to_stdout),
    "unknown_format": Fatal(2, _unknown_format),
    "unexpected_bug": Fatal(70, _unexpected_bug),
}


@pytest.mark.parametrize("case", FATAL.values(), ids=FATAL.keys())
def test_fatal_error_exit_status_and_message(
    case: Fatal, tmp_path: Path, outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = case.setup(tmp_path, outdir, monkeypatch)
    result = invoke("run", *args)
    assert result.exit_code == case.code, (result.stderr, result.exception)
    assert result.stdout == ""
    assert_one_error_line(result.stderr)


@pytest.mark.parametrize("case", FATAL.values(), ids=FATAL.keys())
def test_fatal_error_leaves_no_file_behind(
    case: Fatal, tmp_path: Path, outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = case.setup(tmp_path, outdir, monkeypatch)
    result = invoke("run", *args)
    assert result.exit_code != 0
    # Neither an output nor a temporary `.NAME.*.tmp` file: only what the setup made.
    assert listing(outdir) == set(case.keep)
    for kept in case.keep:
        assert not any((outdir / kept).iterdir())


@pytest.mark.parametrize(
    "case",
    [FATAL[k] for k in ("missing_input", "empty_input", "read_fails_mid_file", "unexpected_bug")],
    ids=["missing_input", "empty_input", "read_fails_mid_file", "unexpected_bug"],
)
def test_existing_outputs_survive_a_failed_run(
    case: Fatal, tmp_path: Path, outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = {"a.csv": b"old accounts\n", "r.csv": b"old rejects\n", "s.json": b'{"old": 1}\n'}
    for name, content in old.items():
        (outdir / name).write_bytes(content)
    args = case.setup(tmp_path, outdir, monkeypatch)
    result = invoke("run", *args)
    assert result.exit_code != 0
    assert listing(outdir) == set(old)
    for name, content in old.items():
        assert (outdir / name).read_bytes() == content


def test_existing_outputs_survive_when_one_output_cannot_be_written(
    example: Path, outdir: Path
) -> None:
    (outdir / "a.csv").write_bytes(b"old accounts\n")
    (outdir / "s.json").write_bytes(b"{}\n")
    (outdir / "r.csv").mkdir()
    result = invoke("run", example, *all_outputs(outdir))
    assert result.exit_code == 73
    assert (outdir / "a.csv").read_bytes() == b"old accounts\n"
    assert (outdir / "s.json").read_bytes() == b"{}\n"
    assert listing(outdir) == {"a.csv", "s.json", "r.csv"}


def test_existing_outputs_are_replaced_on_success(example: Path, outdir: Path) -> None:
    for name in ("a.csv", "r.csv", "s.json"):
        (outdir / name).write_bytes(b"old content that is longer than the new one " * 100)
    result = invoke("run", example, *all_outputs(outdir))
    assert result.exit_code == 0, result.stderr
    assert (outdir / "a.csv").read_text() == EXPECTED_CSV
    assert rejects_from_csv(outdir / "r.csv") == EXPECTED_REJECTS
    assert json.loads((outdir / "s.json").read_text())["rows_read"] == 9
    assert listing(outdir) == {"a.csv", "r.csv", "s.json"}


def test_error_message_names_the_problem(tmp_path: Path, outdir: Path) -> None:
    missing = tmp_path / "nope.csv"
    line = assert_one_error_line(invoke("run", missing).stderr)
    assert str(missing) in line

    header = write_text(tmp_path / "h.csv", "type,client,amount\n")
    line = assert_one_error_line(invoke("run", header).stderr)
    assert "tx" in line

    line = assert_one_error_line(
        invoke(
            "run", write_text(tmp_path / "e.csv", EXAMPLE), "--out", outdir / "x" / "a.csv"
        ).stderr
    )
    assert "a.csv" in line


needs_non_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="permission bits do not stop root",
)


@needs_non_root
def test_unreadable_input(tmp_path: Path, outdir: Path) -> None:
    path = write_text(tmp_path / "secret.csv", EXAMPLE)
    path.chmod(0)
    result = invoke("run", path, *all_outputs(outdir))
    assert result.exit_code == 66
    assert_one_error_line(result.stderr)
    assert listing(outdir) == set()


@needs_non_root
def test_read_only_output_folder(example: Path, outdir: Path) -> None:
    locked = outdir / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = invoke("run", example, "--out", locked / "a.csv")
        assert result.exit_code == 73
        assert_one_error_line(result.stderr)
        assert listing(locked) == set()
    finally:
        locked.chmod(0o755)


# ---------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    "args",
    [
        ["run"],
        ["run", "{example}", "--batch-size", "0"],
        ["run", "{example}", "--batch-size", "many"],
        ["run", "{example}", "--no-such-option"],
        ["frobnicate", "{example}"],
    ],
    ids=["no_input", "batch_size_zero", "batch_size_text", "unknown_option", "unknown_command"],
)
def test_usage_errors_exit_2(example: Path, args: list[str]) -> None:
    result = invoke(*(str(example) if a == "{example}" else a for a in args))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------- --debug


def test_debug_shows_the_traceback_of_a_fatal_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    result = invoke("run", missing, "--debug")
    assert result.exit_code == 66
    assert result.stdout == ""
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1].startswith(ERROR_PREFIX)


def test_debug_keeps_the_exit_status_of_a_bug(
    tmp_path: Path, outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--debug adds a traceback; it does not change the documented status 70 of a bug."""
    args = _unexpected_bug(tmp_path, outdir, monkeypatch)
    result = invoke("run", *args, "--debug")
    assert result.exit_code == 70, (result.exit_code, result.exception)
    assert "Traceback (most recent call last)" in result.stderr
    assert "kaput" in result.stderr
    assert listing(outdir) == set()


def test_without_debug_a_bug_is_one_line(
    tmp_path: Path, outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = _unexpected_bug(tmp_path, outdir, monkeypatch)
    result = invoke("run", *args)
    line = assert_one_error_line(result.stderr)
    assert "kaput" in line
    assert "--debug" in line


# ---------------------------------------------------------------------------- real process


def test_script_splits_stdout_and_stderr(example: Path) -> None:
    proc = run_script("run", example.name, cwd=example.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == EXPECTED_CSV
    stderr = proc.stderr.decode()
    assert "rows read" in stderr
    assert "insufficient_funds" in stderr
    assert "client," not in stderr


def test_script_fatal_error(tmp_path: Path) -> None:
    proc = run_script("run", "missing.csv", "--out", "a.csv", cwd=tmp_path)
    assert proc.returncode == 66
    assert proc.stdout == b""
    line = assert_one_error_line(proc.stderr.decode())
    assert "missing.csv" in line
    assert listing(tmp_path) == set()


def test_terminal_stderr_leaves_stdout_clean(example: Path) -> None:
    """`accounts-job run in.csv > out.csv` in a terminal: the progress bar belongs on stderr;
    stdout must hold exactly the CSV."""
    code, stdout, terminal = run_on_terminal(["run", example.name], example.parent)
    assert code == 0
    assert stdout.decode() == EXPECTED_CSV
    assert b"rows read" in terminal


def test_quiet_draws_nothing_on_a_terminal(example: Path) -> None:
    code, stdout, terminal = run_on_terminal(["run", example.name, "--quiet"], example.parent)
    assert code == 0
    assert stdout.decode() == EXPECTED_CSV
    assert terminal == b""
