"""Inputs as they arrive (docs/rules.md §2.10): compressed, piped, several in one run.

- Compressed CSV (gzip, zstd, bzip2, xz) is told by its magic bytes, not its name, and
  decompressed once per run into a spool file that both passes read, removed on every
  way out (a failure, SIGTERM; a SIGKILLed run's by the next run).
- `-`, `/dev/stdin` and a FIFO are read once, spooled like a compressed file.
- Several inputs, and quoted globs, are one stream: a dispute in the second file finds
  the first file's deposit; each keeps its header and line numbers; rejects and events
  gain a `file` column.
- A ZIP, Parquet, Arrow or binary input fails with 65 naming what it looks like; corrupt
  or cut-short compressed data with 74, nothing written and the state as it was.
- With --state, exactly once goes by the decompressed content, across forms and names;
  a run over several inputs commits all of them or none (§7), and inputs applied before
  are skipped with a note.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import accounts_job
import accounts_job.io.spool as spool
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
import zstandard
from accounts_job import AlreadyApplied
from accounts_job.errors import FormError, InputError, ReadError, UsageError
from accounts_job.state.folder import StateDir
from support.helpers import (
    COMMIT_POINTS,
    HEADER,
    D,
    console_script,
    crash_env,
    csv_text,
    hostile_days,
    new_state,
    run_script,
    snapshot,
)

DAY = csv_text("deposit,1,1,10", "deposit,2,2,5", "withdrawal,1,3,20", "bogus,1,4,1")
NEXT = csv_text("dispute,1,1", "", "deposit,3,5,1.5", "dispute,2,9")

COMPRESS = {
    "gzip": lambda b: gzip.compress(b),
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    "bz2": lambda b: bz2.compress(b),
    "xz": lambda b: lzma.compress(b),
}


def write(path: Path, text: str | bytes, form: str = "csv") -> Path:
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(data if form == "csv" else COMPRESS[form](data))
    return path


def outcome(result: accounts_job.Result) -> tuple:
    """What a run decided: the accounts and the rejects, as plain values."""
    return (
        result.accounts.rows(),
        result.rejects.rows(),
        result.summary.rows_read,
        result.summary.applied,
        result.summary.rejected,
    )


# --- Compressed forms ------------------------------------------------------------------


@pytest.mark.parametrize("form", list(COMPRESS))
def test_each_compressed_form_gives_the_plain_run_told_by_magic_not_name(tmp_path, form):
    plain = accounts_job.process(write(tmp_path / "day.csv", DAY))
    # Named like a plain CSV: the magic bytes decide.
    packed = accounts_job.process(write(tmp_path / "packed.csv", DAY, form))
    assert outcome(packed) == outcome(plain)
    assert packed.summary.inputs[0]["form"] == form
    assert packed.summary.inputs[0]["plain_bytes"] == len(DAY)
    assert packed.summary.input_bytes == (tmp_path / "packed.csv").stat().st_size


def test_a_gz_name_holding_plain_text_is_read_as_text(tmp_path):
    result = accounts_job.process(write(tmp_path / "day.csv.gz", DAY))
    assert result.summary.inputs[0]["form"] == "csv"
    assert result.accounts.rows()[0][0] == 1


def test_concatenated_gzip_members_are_one_file(tmp_path):
    first, rest = DAY.split("deposit,2", 1)
    path = tmp_path / "two.gz"
    path.write_bytes(gzip.compress(first.encode()) + gzip.compress(("deposit,2" + rest).encode()))
    assert outcome(accounts_job.process(path)) == outcome(
        accounts_job.process(write(tmp_path / "day.csv", DAY))
    )


def test_a_compressed_input_is_decompressed_once_and_its_spool_removed(tmp_path, monkeypatch):
    calls = []
    real = spool._decompressed

    def counting(form, raw):
        calls.append(form)
        return real(form, raw)

    monkeypatch.setattr(spool, "_decompressed", counting)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(spool.tempfile, "tempdir", None)  # TMPDIR read anew
    a = write(tmp_path / "a.csv.gz", DAY, "gzip")
    b = write(tmp_path / "b.csv.zst", NEXT, "zstd")
    accounts_job.process([a, b], state=new_state(tmp_path / "state"))
    assert calls == ["gzip", "zstd"]  # two passes and the hashes, one decompression each
    assert list((tmp_path / "tmp").iterdir()) == []


def test_progress_follows_the_compressed_bytes(tmp_path):
    data = "".join(f"deposit,{i % 50},{i},1.5\n" for i in range(1, 20000))
    path = write(tmp_path / "big.gz", HEADER + "\n" + data, "gzip")
    seen: dict[str, int] = {}

    def progress(name: str, nbytes: int) -> None:
        seen[name] = seen.get(name, 0) + nbytes

    accounts_job.process(path, progress=progress)
    size = path.stat().st_size
    assert seen["input"] == size and seen["reading"] == size  # compressed bytes
    plain = len(HEADER) + 1 + len(data)
    assert seen["size"] == plain
    assert seen["rules"] == plain - len(HEADER) - 1  # the lines after the header


# --- Forms the job does not read -----------------------------------------------------------


def zip_file(path: Path) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("day.csv", DAY)
    return path


def parquet_file(path: Path) -> Path:
    pq.write_table(pcsv.read_csv(pa.py_buffer(DAY.encode())), path)
    return path


def arrow_file(path: Path) -> Path:
    table = pcsv.read_csv(pa.py_buffer(DAY.encode()))
    with pa.ipc.new_file(path, table.schema) as w:
        w.write_table(table)
    return path


@pytest.mark.parametrize(
    ("make", "looks"),
    [
        (zip_file, b"looks like a ZIP archive"),
        (lambda p: (p.write_bytes(os.urandom(8192)), p)[1], b"looks like binary data"),
    ],
    ids=["zip", "random"],
)
def test_an_input_of_another_form_fails_65_in_one_line_before_any_output(tmp_path, make, looks):
    path = make(tmp_path / "day.csv")
    out = tmp_path / "out"
    out.mkdir()
    done = run_script("run", path, "--out", out / "a.csv", "--rejects", out / "r.csv")
    assert done.returncode == 65, done.stderr
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert looks in done.stderr
    assert b"gzip, zstd, bzip2 or xz" in done.stderr  # what it reads instead
    assert list(out.iterdir()) == []
    with pytest.raises(FormError):
        accounts_job.process(path)


@pytest.mark.parametrize(
    ("make", "looks"),
    [(parquet_file, b"looks like a Parquet file"), (arrow_file, b"looks like an Arrow IPC file")],
    ids=["parquet", "arrow"],
)
def test_a_typed_file_among_csv_inputs_fails_65_in_one_line_before_any_output(
    tmp_path, make, looks
):
    """Parquet and Arrow are read alone (docs/rules.md §2.11), not in a list of CSVs."""
    csv = tmp_path / "mon.csv"
    csv.write_text(DAY)
    path = make(tmp_path / "tue.csv")
    out = tmp_path / "out"
    out.mkdir()
    done = run_script("run", csv, path, "--out", out / "a.csv", "--rejects", out / "r.csv")
    assert done.returncode == 65, done.stderr
    assert len(done.stderr.decode().splitlines()) == 1, done.stderr
    assert looks in done.stderr and b"only input" in done.stderr
    assert list(out.iterdir()) == []
    with pytest.raises(FormError):
        accounts_job.process([csv, path])
    # Alone, the same file is read as typed rows.
    assert accounts_job.process(path).summary.rows_read > 0


@pytest.mark.parametrize("damage", ["cut", "corrupt"])
@pytest.mark.parametrize("form", list(COMPRESS))
def test_corrupt_or_cut_compressed_data_is_74_nothing_written_state_unchanged(
    tmp_path, form, damage
):
    body = "".join(f"deposit,{i % 7},{i},2\n" for i in range(1, 30000))
    data = bytearray(COMPRESS[form]((HEADER + "\n" + body).encode()))
    if damage == "cut":
        data = data[: len(data) // 2]
    else:
        middle = len(data) // 2
        data[middle : middle + 64] = bytes(64)  # zeros in the compressed stream
    bad = tmp_path / "bad.csv"
    bad.write_bytes(bytes(data))
    state = new_state(tmp_path / "state")
    accounts_job.process(write(tmp_path / "first.csv", DAY), state=state)
    before = snapshot(state)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ReadError, match="corrupt or cut short"):
        accounts_job.process(
            [write(tmp_path / "ok.csv", NEXT), bad],
            state=state,
            accounts_to=out / "a.csv",
            rejects_to=out / "r.csv",
            events_to=out / "e.csv",
        )
    assert list(out.iterdir()) == []
    assert snapshot(state) == before


# --- Pipes ---------------------------------------------------------------------------------


def script(*args: object, stdin: bytes, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(console_script()), *map(str, args)],
        input=stdin,
        capture_output=True,
        timeout=300,
        env=env,
    )


@pytest.mark.parametrize("name", ["-", "/dev/stdin"])
@pytest.mark.parametrize("form", ["csv", "gzip"])
def test_standard_input_is_read_once(tmp_path, name, form):
    data = DAY.encode() if form == "csv" else gzip.compress(DAY.encode())
    piped = script("run", name, "--rejects", tmp_path / "r.csv", "--quiet", stdin=data)
    assert piped.returncode == 0, piped.stderr
    plain = run_script("run", write(tmp_path / "day.csv", DAY), "--quiet")
    assert piped.stdout == plain.stdout
    assert (tmp_path / "r.csv").read_text().splitlines()[1:] == [
        '4,"insufficient_funds","withdrawal,1,3,20"',
        '5,"unknown_type","bogus,1,4,1"',
    ]


def test_a_fifo_is_read_once(tmp_path):
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write(zstandard.ZstdCompressor().compress(DAY.encode()))

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    done = run_script("run", fifo, "--quiet")
    writer.join(timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == run_script("run", write(tmp_path / "d.csv", DAY), "--quiet").stdout


def test_standard_input_named_twice_is_a_usage_error():
    with pytest.raises(UsageError, match="read once"):
        accounts_job.process(["-", "-"])


def spool_folders(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(spool.SPOOL_MARK)]


def test_sigterm_while_spooling_a_pipe_removes_the_spool(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**crash_env(), "TMPDIR": str(tmp)}
    out = tmp_path / "a.csv"
    proc = subprocess.Popen(
        [str(console_script()), "run", "-", "--out", out, "--quiet"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(DAY.encode())  # part of the input; the rest never comes
    proc.stdin.flush()
    deadline = time.monotonic() + 120
    while not spool_folders(tmp) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert spool_folders(tmp), "the run never started spooling"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert spool_folders(tmp) == []
    assert not out.exists()


def test_a_killed_runs_spool_is_removed_by_the_next_run(tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    left = tmp / f"{spool.SPOOL_MARK}-{2**22 + 7}-abc"  # a pid that is not running
    left.mkdir(parents=True)
    (left / "input-1.csv").write_text(DAY)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(spool.tempfile, "tempdir", None)
    accounts_job.process(write(tmp_path / "d.gz", DAY, "gzip"))
    assert spool_folders(tmp) == []


# --- Several inputs ---------------------------------------------------------------------


def test_several_inputs_are_one_stream_each_with_its_own_lines(tmp_path):
    a = write(tmp_path / "a.csv", DAY)
    b = write(tmp_path / "b.csv.gz", NEXT, "gzip")
    result = accounts_job.process(
        [a, b], rejects_to=tmp_path / "r.csv", events_to=tmp_path / "e.parquet"
    )
    # b's dispute finds a's deposit: one stream.
    accounts = {row[0]: row[1:] for row in result.accounts.rows()}
    assert accounts[1] == (D("0"), D("10"), D("10"), False)
    assert accounts[3] == (D("1.5"), D("0"), D("1.5"), False)
    rejects = (tmp_path / "r.csv").read_text().splitlines()
    assert rejects == [
        "file,line,reason,raw",
        f'"{a}",4,"insufficient_funds","withdrawal,1,3,20"',
        f'"{a}",5,"unknown_type","bogus,1,4,1"',
        f'"{b}",5,"unknown_tx","dispute,2,9"',  # line 5 of b: its own numbering
    ]
    events = pq.read_table(tmp_path / "e.parquet")
    assert events.column_names[:2] == ["file", "line"]
    assert list(zip(events["file"].to_pylist(), events["line"].to_pylist(), strict=True)) == [
        (str(a), 2),
        (str(a), 3),
        (str(b), 2),
        (str(b), 4),
    ]
    summary = result.summary
    assert [i["name"] for i in summary.inputs] == [str(a), str(b)]
    assert [i["rows"] for i in summary.inputs] == [4, 4]
    assert summary.rows_read == 8 and summary.blank_lines == 1
    text = summary.to_text()
    assert str(a) in text and str(b) in text


def test_one_input_has_no_file_column(tmp_path):
    result = accounts_job.process(write(tmp_path / "a.csv", DAY), rejects_to=tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_text().startswith("line,reason,raw\n")
    assert result.rejects is None or "file" not in result.rejects.columns


def test_kept_rejects_of_several_inputs_name_their_file(tmp_path):
    a, b = write(tmp_path / "a.csv", DAY), write(tmp_path / "b.csv", NEXT)
    rejects = accounts_job.process([a, b]).rejects
    assert rejects.columns == ["file", "line", "reason", "raw"]
    assert rejects.select("file", "line").rows() == [(str(a), 4), (str(a), 5), (str(b), 5)]


def test_a_quoted_glob_is_expanded_and_sorted_by_the_job(tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    # Written out of order: the job sorts, so the deposit comes before its dispute.
    write(folder / "2026-11-02.csv", NEXT)
    write(folder / "2026-11-01.csv.gz", DAY, "gzip")
    write(folder / "2026-10-31.txt", DAY)
    done = run_script("run", f"{folder}/2026-11-*", "--summary", tmp_path / "s.json", "-q")
    assert done.returncode == 0, done.stderr
    names = [i["name"] for i in json.loads((tmp_path / "s.json").read_text())["inputs"]]
    assert names == [f"{folder}/2026-11-01.csv.gz", f"{folder}/2026-11-02.csv"]
    assert b"1,0.0000,10.0000,10.0000,false" in done.stdout


def test_a_glob_that_matches_nothing_is_66(tmp_path):
    done = run_script("run", f"{tmp_path}/none-*.csv", "--out", tmp_path / "a.csv")
    assert done.returncode == 66
    assert b"no input matches" in done.stderr
    with pytest.raises(InputError, match="no input matches"):
        accounts_job.process(f"{tmp_path}/none-*.csv")


def test_a_missing_input_among_several_fails_66_before_reading_any(tmp_path):
    with pytest.raises(InputError, match="input not found"):
        accounts_job.process([write(tmp_path / "a.csv", DAY), tmp_path / "nope.csv"])


def test_an_output_on_any_input_is_refused(tmp_path):
    a, b = write(tmp_path / "a.csv", DAY), write(tmp_path / "b.csv", NEXT)
    with pytest.raises(UsageError, match="overwrite the input"):
        accounts_job.process([a, b], rejects_to=b)


def test_a_writer_without_a_file_column_is_refused_for_several_inputs(tmp_path):
    from accounts_job.io.writers import RejectsWriter

    a, b = write(tmp_path / "a.csv", DAY), write(tmp_path / "b.csv", NEXT)
    with pytest.raises(UsageError, match="files=True"):
        accounts_job.process([a, b], rejects_to=RejectsWriter(tmp_path / "r.csv"))
    accounts_job.process([a, b], rejects_to=RejectsWriter(tmp_path / "r.csv", files=True))
    assert (tmp_path / "r.csv").read_text().startswith("file,line,reason,raw\n")


# --- Several inputs with a state ------------------------------------------------------------


def manifest_names(state: Path) -> list[str]:
    return [a.name for a in StateDir(state).manifest().applied]


def test_exactly_once_goes_by_the_decompressed_content(tmp_path):
    state = new_state(tmp_path / "state")
    accounts_job.process(write(tmp_path / "day.csv", DAY), state=state)
    # The same day again, gzipped, under another name, with CRLF line ends.
    crlf = DAY.replace("\n", "\r\n")
    for form in ("gzip", "xz"):
        with pytest.raises(AlreadyApplied, match=r"already applied .*as day\.csv"):
            accounts_job.process(write(tmp_path / f"again-{form}", crlf, form), state=state)
    assert manifest_names(state) == ["day.csv"]


def test_inputs_applied_before_are_skipped_with_a_note(tmp_path):
    state = new_state(tmp_path / "state")
    a, b = write(tmp_path / "a.csv", DAY), write(tmp_path / "b.csv", NEXT)
    accounts_job.process(a, state=state)
    a_gz = write(tmp_path / "a-again.csv.gz", DAY, "gzip")
    result = accounts_job.process([a_gz, b], state=state, summary_to=tmp_path / "s.json")
    notes = [i["skipped"] for i in result.summary.inputs]
    assert notes[0].startswith("already applied (as a.csv") and notes[1] is None
    assert manifest_names(state) == ["a.csv", "b.csv"]
    assert result.summary.rows_read == 4  # b's rows only
    done = run_script("run", a, b, "--state", state)  # everything applied: nothing to do
    assert done.returncode == 0
    assert b"every input was already applied" in done.stderr
    assert manifest_names(state) == ["a.csv", "b.csv"]


def test_the_same_content_twice_in_one_run_is_applied_once(tmp_path):
    state = new_state(tmp_path / "state")
    a = write(tmp_path / "a.csv", DAY)
    a_zst = write(tmp_path / "a.zst", DAY, "zstd")
    done = run_script("run", a, a_zst, "--state", state, "--quiet")
    assert done.returncode == 0, done.stderr
    assert b"a.zst not applied: the same content as" in done.stderr  # said with --quiet
    assert manifest_names(state) == ["a.csv"]


def test_a_run_over_several_inputs_is_one_version_of_the_state(tmp_path):
    state = new_state(tmp_path / "state")
    days = hostile_days(tmp_path, n=3, rows=600)
    accounts_job.process(days, state=state)
    manifest = StateDir(state).manifest()
    assert manifest.version == 1
    assert [a.name for a in manifest.applied] == [d.name for d in days]
    assert {a.version for a in manifest.applied} == {1}
    assert sum(a.rows for a in manifest.applied) == sum(
        len(d.read_text().splitlines()) - 1 for d in days
    )


RUN_LIST = (
    "import json, sys, accounts_job\n"
    "accounts_job.process(json.loads(sys.argv[1]), **json.loads(sys.argv[2]))\n"
)


@pytest.mark.parametrize("point", COMMIT_POINTS)
def test_several_inputs_killed_at_each_point_commit_all_or_none_and_a_rerun_finishes(
    tmp_path, point
):
    days = hostile_days(tmp_path, n=3, rows=900)
    days[1] = write(tmp_path / "day-1.csv.gz", days[1].read_bytes(), "gzip")
    # The reference: the same inputs, one uninterrupted run.
    ref_state = new_state(tmp_path / "ref")
    reference = accounts_job.process(days, state=ref_state).accounts.rows()

    state = new_state(tmp_path / "state")
    accounts_job.process(days[0], state=state)  # an earlier night applied the first file
    before = (state / "manifest.json").read_bytes()  # the state is its manifest
    out = tmp_path / "accounts.csv"
    options = {"state": str(state), "accounts_to": str(out)}
    names = [str(d) for d in days]
    killed = subprocess.run(
        [sys.executable, "-c", RUN_LIST, json.dumps(names), json.dumps(options)],
        env=crash_env(point),
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    applied = manifest_names(state)
    if point == "manifest-renamed":
        assert applied == [d.name for d in days]  # all of tonight's inputs at once
    else:
        # None of them (what the killed run wrote beside it, the next run removes).
        assert (state / "manifest.json").read_bytes() == before
    # The same command again finishes the job and applies nothing twice.
    again = subprocess.run(
        [sys.executable, "-c", RUN_LIST, json.dumps(names), json.dumps(options)],
        env=crash_env(),
        capture_output=True,
        timeout=300,
    )
    if point == "manifest-renamed":
        assert b"AlreadyApplied" in again.stderr
    else:
        assert again.returncode == 0, again.stderr
    assert manifest_names(state) == [d.name for d in days]
    manifest = StateDir(state).manifest()
    assert sorted(p.name for p in state.iterdir()) == sorted(
        ["manifest.json", "lock", *manifest.files]
    )  # no leftovers
    final = accounts_job.process(write(tmp_path / "empty.csv", HEADER + "\n"), state=state)
    assert final.accounts.rows() == reference


def test_explore_reads_the_file_column_back(tmp_path):
    from accounts_job.explore import read_events, read_rejects

    a, b = write(tmp_path / "a.csv", DAY), write(tmp_path / "b.csv", NEXT)
    for suffix in ("csv", "parquet"):
        rejects, events = tmp_path / f"r.{suffix}", tmp_path / f"e.{suffix}"
        accounts_job.process([a, b], rejects_to=rejects, events_to=events)
        got = read_rejects(rejects)
        assert got.columns == ["file", "line", "reason", "raw"]
        assert got.select("file", "line").rows() == [(str(a), 4), (str(a), 5), (str(b), 5)]
        assert read_events(events).get_column("file").to_list() == [str(a)] * 2 + [str(b)] * 2


def test_a_cluster_run_refuses_a_compressed_input_or_a_pipe(tmp_path):
    packed = write(tmp_path / "d.csv.gz", DAY, "gzip")
    with pytest.raises(UsageError, match="gzip-compressed"):
        accounts_job.process(packed, cluster="local:1")
    with pytest.raises(UsageError, match="takes one input"):
        accounts_job.process([packed, packed], cluster="local:1")
    with pytest.raises(UsageError, match="takes one input"):
        accounts_job.process("-", cluster="local:1")
