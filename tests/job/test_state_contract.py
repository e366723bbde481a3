"""What a nightly state promises besides surviving faults (docs/rules.md §7): it is made on
purpose (`state init`), an input is applied once by its content, a re-sent file is
refused, a signed state refuses consistent edits, a growing input is read as it was,
`state show` counts what is there, and the ledgers keep the order later nights rely on.

test_state_faults.py kills, fills and damages the state.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import accounts_job
import accounts_job.state.files
import accounts_job.state.folder
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from accounts_job import AlreadyApplied
from accounts_job.cli import app
from accounts_job.engine.references import InputDigest, first_pass
from accounts_job.errors import NotAState, ProbableResend, StateError, StateWriteError, UsageError
from accounts_job.io.blocks import BlockReader
from accounts_job.io.header import read_header
from accounts_job.kernels.lines import CONTENT_PARTS, content_lines, is_content
from accounts_job.state.folder import LOCK, StateDir
from accounts_job.state.manifest import MANIFEST
from accounts_job.state.night import RESEND_MIN_IDS
from hypothesis import given, settings
from hypothesis import strategies as st
from support.helpers import HEADER, crash_env, new_state, run_script, snapshot
from typer.testing import CliRunner

KEY = b"a key only the operator has"


runner = CliRunner()


def cli(*args: object, env: dict[str, str | None] | None = None):
    """The command line in this process (faster than a new one): its exit status as
    `returncode`, and its output as bytes."""
    done = runner.invoke(app, [str(a) for a in args], env=env)
    return subprocess.CompletedProcess(args, done.exit_code, done.stdout_bytes, done.stderr_bytes)


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def csv(*rows: str) -> str:
    return "".join(f"{line}\n" for line in (HEADER, *rows))


def accounts(result) -> dict[int, tuple]:
    return {r[0]: r[1:] for r in result.accounts.rows()}


# ---------------------------------------------------------------------------- state init


def test_run_on_a_missing_state_folder_exits_66_and_creates_nothing(tmp_path):
    day = write(tmp_path / "day.csv", csv("deposit,1,1,5"))
    state = tmp_path / "typo" / "state"
    out = tmp_path / "accounts.csv"
    refused = run_script("run", day, "--state", state, "--out", out)
    assert refused.returncode == 66, refused.stderr
    message = refused.stderr.decode()
    assert message.count("\n") == 1 and "does not exist" in message
    assert f"accounts-job state init {state}" in message
    assert not (tmp_path / "typo").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["day.csv"]


def test_run_on_a_folder_that_is_not_a_state_exits_66_and_creates_nothing(tmp_path):
    day = write(tmp_path / "day.csv", csv("deposit,1,1,5"))
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(NotAState, match=r"not a state folder.*state init") as refused:
        accounts_job.process(day, state=folder, accounts_to=tmp_path / "a.csv")
    assert refused.value.exit_code == 66
    assert list(folder.iterdir()) == []
    assert not (tmp_path / "a.csv").exists()


@pytest.mark.parametrize("what", ["missing", "empty folder", "a file"])
def test_state_show_of_what_is_not_a_state_exits_66(tmp_path, what):
    folder = tmp_path / "state"
    if what == "empty folder":
        folder.mkdir()
    elif what == "a file":
        folder.write_text("hello\n")
    shown = cli("state", "show", folder)
    assert shown.returncode in ((66, 2) if what == "a file" else (66,)), shown.stderr
    assert b"version 0" not in shown.stdout
    if what != "a file":
        assert b"state init" in shown.stderr


def test_state_init_makes_an_empty_state_once(tmp_path):
    state = tmp_path / "new" / "state"
    made = cli("state", "init", state)
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in state.iterdir()) == [LOCK, MANIFEST]
    manifest = StateDir(state).manifest()
    assert (manifest.version, manifest.files, manifest.applied) == (0, {}, [])
    shown = cli("state", "show", state, "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["version"] == 0
    before = snapshot(state)
    again = cli("state", "init", state)  # idempotent
    assert again.returncode == 0 and b"already" in again.stderr
    assert snapshot(state) == before
    day = write(tmp_path / "day.csv", csv("deposit,1,1,5"))
    accounts_job.process(day, state=state)
    before = snapshot(state)
    assert cli("state", "init", state).returncode == 0
    assert snapshot(state) == before  # a state with nights applied is left as it is


def test_state_init_refuses_a_folder_that_is_not_a_state(tmp_path):
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    refused = cli("state", "init", folder)
    assert refused.returncode == 73, refused.stderr
    assert b"not empty" in refused.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    file = tmp_path / "a-file"
    file.write_text("x\n")
    assert cli("state", "init", file).returncode == 2  # the command line: a usage error
    with pytest.raises(StateWriteError, match="it is a file"):
        StateDir(file).init()


def bricked_first_night(tmp_path: Path) -> tuple[Path, Path]:
    """What versions before `state init` left when killed on a first night: the night's
    files, no manifest. Made by running a night and taking its manifest away."""
    state = new_state(tmp_path / "bricked")
    day = write(tmp_path / "day.csv", csv("deposit,1,1,5", "deposit,2,2,7", "dispute,1,1"))
    accounts_job.process(day, state=state)
    (state / MANIFEST).rename(state / ".manifest.json.1.tmp")
    return state, day


def test_state_init_adopts_a_folder_an_interrupted_first_night_left(tmp_path):
    state, day = bricked_first_night(tmp_path)
    # Not a state until adopted: a run says so and changes nothing.
    before = snapshot(state)
    refused = cli("run", day, "--state", state, "-q")
    assert refused.returncode == 66 and b"state init" in refused.stderr
    assert snapshot(state) == before
    adopted = cli("state", "init", state)
    assert adopted.returncode == 0, adopted.stderr
    assert sorted(p.name for p in state.iterdir()) == [LOCK, MANIFEST]
    assert StateDir(state).manifest().version == 0
    assert cli("run", day, "--state", state, "-q").returncode == 0
    assert StateDir(state).manifest().version == 1


def test_state_init_does_not_adopt_a_state_that_lost_its_manifest(tmp_path):
    """State files of later versions without a manifest are a state whose manifest was
    lost, not a first night's leftovers: init refuses to remove them (65)."""
    state, day = bricked_first_night(tmp_path)
    StateDir(state).init()
    accounts_job.process(day, state=state)
    accounts_job.process(write(tmp_path / "d2.csv", csv("deposit,3,3,1")), state=state)
    (state / MANIFEST).unlink()
    before = snapshot(state)
    refused = cli("state", "init", state)
    assert refused.returncode == 65, refused.stderr
    assert b"manifest was lost" in refused.stderr
    assert snapshot(state) == before


def test_an_interrupted_state_init_is_finished_by_running_it_again(tmp_path):
    state = tmp_path / "state"
    killed = run_script("state", "init", state, env=crash_env("manifest-written"))
    assert killed.returncode == -9
    assert not (state / MANIFEST).exists()
    assert (
        cli("run", write(tmp_path / "d.csv", csv("deposit,1,1,5")), "--state", state).returncode
        == 66
    )
    done = cli("state", "init", state)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in state.iterdir()) == [LOCK, MANIFEST]


def test_a_lock_with_another_link_is_refused(tmp_path):
    state = new_state(tmp_path / "state")
    (state / LOCK).unlink()
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.link(victim, state / LOCK)
    with pytest.raises(StateError, match="other links"):
        accounts_job.process(write(tmp_path / "d.csv", csv("deposit,1,1,5")), state=state)
    assert victim.read_text() == "precious\n"


def test_a_run_refused_at_the_start_lets_go_of_the_lock(tmp_path):
    """A damaged state refuses the run as soon as it holds the lock, and lets it go: the
    next run in the same process is not told the folder is busy."""
    state = new_state(tmp_path / "state")
    (state / MANIFEST).write_text("{}")
    day = write(tmp_path / "d.csv", csv("deposit,1,1,5"))
    with pytest.raises(StateError, match="not a readable state manifest") as refused:
        accounts_job.process(day, state=state)
    with StateDir(state).locked():  # not StateBusy
        pass
    assert refused.value.exit_code == 65


def leftovers_of_an_interrupted_run(state: Path) -> list[str]:
    names = ["balances-000009.parquet", "ledger-000009.parquet", ".manifest.json.9.tmp"]
    for name in names:
        (state / name).write_bytes(b"half written")
    return names


def test_leftovers_are_removed_under_the_lock_by_the_next_run(tmp_path):
    """At its start, whether it then commits or not (here: a file already applied)."""
    state = new_state(tmp_path / "state")
    day = write(tmp_path / "day.csv", csv("deposit,1,1,5"))
    accounts_job.process(day, state=state)
    leftovers_of_an_interrupted_run(state)
    (state / "README").write_text("an operator's note, not ours\n")
    with pytest.raises(AlreadyApplied):
        accounts_job.process(day, state=state)
    manifest = StateDir(state).manifest()
    assert sorted(p.name for p in state.iterdir()) == sorted(
        [LOCK, MANIFEST, "README", *manifest.files]
    )


def test_leftovers_are_not_touched_while_another_run_holds_the_lock(tmp_path):
    state = new_state(tmp_path / "state")
    names = leftovers_of_an_interrupted_run(state)
    with StateDir(state).locked():
        with pytest.raises(accounts_job.JobError, match="in use by another run"):
            accounts_job.process(write(tmp_path / "day.csv", csv("deposit,1,1,5")), state=state)
        assert all((state / name).exists() for name in names)


def as_format_1(state: Path) -> None:
    """Rewrite a state's manifest as versions before the content hash wrote it: format 1,
    applied files with their SHA-256 only."""
    body = json.loads((state / MANIFEST).read_text())
    del body["checksum"]
    body["format"] = 1
    for applied in body["applied"]:
        del applied["content_sha256"]
    body["checksum"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    (state / MANIFEST).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")


def test_a_state_an_earlier_version_committed_to_keeps_working(tmp_path):
    state = new_state(tmp_path / "state")
    day = write(tmp_path / "day.csv", csv(*(f"deposit,1,{n},1" for n in range(1, 41))))
    accounts_job.process(day, state=state)
    as_format_1(state)
    assert StateDir(state).manifest().applied[0].content_sha256 is None
    with pytest.raises(AlreadyApplied):  # the same bytes: the old hash matches
        accounts_job.process(day, state=state)
    # The same content in other bytes: the old entry has no content hash, but the
    # re-send check still knows its tx ids.
    crlf = write(tmp_path / "crlf.csv", day.read_bytes().replace(b"\n", b"\r\n"))
    with pytest.raises(ProbableResend, match="40 of the 40 tx ids"):
        accounts_job.process(crlf, state=state)
    accounts_job.process(write(tmp_path / "d2.csv", csv("deposit,1,100,1")), state=state)
    assert StateDir(state).manifest().version == 2


# ---------------------------------------------------------------------------- exactly once

DAY_1 = csv(*(f"deposit,{1 + n % 4},{n},{1 + n % 3}.25" for n in range(1, 61)))
DAY_2_ROWS = [
    *(f"deposit,{1 + n % 4},{n},2" for n in range(61, 121)),
    *(f"dispute,{1 + n % 4},{n}" for n in range(1, 30, 2)),
    *(f"resolve,{1 + n % 4},{n}" for n in range(1, 12, 2)),
    "withdrawal,2,121,1.5",
]
DAY_2 = csv(*DAY_2_ROWS)

SAME_CONTENT = {
    "an extra newline": lambda text: text + "\n",
    "CRLF line ends": lambda text: text.replace("\n", "\r\n"),
    "a byte-order mark": lambda text: "\ufeff" + text,
    "trailing spaces and tabs": lambda text: text.replace("\n", " \t \n"),
    "blank lines between rows": lambda text: text.replace("\n", "\n \n\n", 5),
    "no final line end": lambda text: text.rstrip("\n"),
    "all of these": lambda text: "\ufeff\r\n" + text.replace("\n", "\t\r\n\r\n") + "\n",
}


@pytest.fixture
def two_days(tmp_path: Path) -> Path:
    state = new_state(tmp_path / "state")
    accounts_job.process(write(tmp_path / "day-1.csv", DAY_1), state=state)
    accounts_job.process(write(tmp_path / "day-2.csv", DAY_2), state=state)
    return state


@pytest.mark.parametrize("change", SAME_CONTENT.values(), ids=SAME_CONTENT.keys())
def test_a_day_re_sent_with_the_same_content_is_already_applied(tmp_path, two_days, change):
    state = two_days
    before = snapshot(state)
    resent = write(tmp_path / "day-2-again.csv", change(DAY_2).encode())
    assert resent.read_bytes() != DAY_2.encode()
    with pytest.raises(AlreadyApplied, match=r"as day-2\.csv"):
        accounts_job.process(resent, state=state, accounts_to=tmp_path / "a.csv")
    assert snapshot(state) == before
    assert not (tmp_path / "a.csv").exists()


def test_a_re_sent_day_exits_0_from_the_command_line(tmp_path, two_days):
    resent = write(tmp_path / "again.csv", DAY_2.replace("\n", "\r\n") + "\n")
    done = cli("run", resent, "--state", two_days, "--out", tmp_path / "a.csv")
    assert done.returncode == 0, done.stderr
    assert b"already applied" in done.stderr
    assert not (tmp_path / "a.csv").exists()


def edited_day_2() -> str:
    """Day 2 sent again with a few rows edited and one added: not the same content."""
    rows = list(DAY_2_ROWS)
    rows[0] = rows[0].replace(",2", ",3")
    rows[61] = "dispute,1,4"
    rows[-1] = "withdrawal,2,121,2.5"
    return csv(*rows, "deposit,3,500,1")


def test_a_day_re_sent_with_rows_edited_is_refused_as_a_re_send(tmp_path, two_days):
    state = two_days
    before = snapshot(state)
    resent = write(tmp_path / "day-2-edited.csv", edited_day_2())
    out = tmp_path / "a.csv"
    refused = cli("run", resent, "--state", state, "--out", out)
    assert refused.returncode == 65, refused.stderr
    # Day 2 claims tx 61 to 121; the edited file claims those and tx 500.
    assert b"61 of the 62 tx ids" in refused.stderr
    assert b"--allow-resend" in refused.stderr
    assert snapshot(state) == before
    assert not out.exists()

    allowed = cli("run", resent, "--state", state, "--out", out, "--allow-resend", "-q")
    assert allowed.returncode == 0, allowed.stderr
    assert StateDir(state).manifest().version == 3
    # Applied like any file: as one run over the three files would.
    whole = write(
        tmp_path / "whole.csv", DAY_1 + DAY_2.split("\n", 1)[1] + edited_day_2().split("\n", 1)[1]
    )
    assert out.read_text() == accounts_job.process(whole).accounts.write_csv()


def test_process_applies_a_re_send_only_when_allowed(tmp_path, two_days):
    resent = write(tmp_path / "day-2-edited.csv", edited_day_2())
    with pytest.raises(ProbableResend) as refused:
        accounts_job.process(resent, state=two_days)
    assert refused.value.exit_code == 65
    accounts_job.process(resent, state=two_days, allow_resend=True)
    assert StateDir(two_days).manifest().version == 3


@pytest.mark.parametrize(
    "rows",
    [
        # A few repeats, under the floor: the rules reject them as duplicate_tx.
        [f"deposit,1,{n},1" for n in range(1, RESEND_MIN_IDS)] + ["deposit,1,900,1"],
        # Many repeats, but most of the night's ids are new.
        [f"deposit,1,{n},1" for n in [*range(1, 31), *range(1000, 1031)]],
    ],
    ids=["under the floor", "under half"],
)
def test_a_night_with_some_repeated_ids_is_not_a_re_send(tmp_path, two_days, rows):
    result = accounts_job.process(write(tmp_path / "day-3.csv", csv(*rows)), state=two_days)
    assert result.summary.rejected["duplicate_tx"] == sum(int(r.split(",")[2]) < 200 for r in rows)


def reference_content(data: bytes) -> bytes:
    """The content exactly once compares, by docs/rules.md §2.1 and §7, in plain Python."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    kept = (line.rstrip(b" \t\r") for line in data.split(b"\n"))
    return b"".join(line + b"\n" for line in kept if line)


LINE = st.lists(
    st.sampled_from([b"deposit", b",", b"1", b" ", b"\t", b"\r", b"\x00", b"\xc3\xa9", b'"']),
    max_size=8,
).map(b"".join)


@settings(max_examples=settings.default.max_examples // 3)
@given(
    bom=st.booleans(),
    before=st.lists(st.sampled_from([b"", b" ", b"\r", b"\t \r"]), max_size=3),
    lines=st.lists(LINE, max_size=30),
    end=st.sampled_from([b"", b"\n", b"\r\n", b"\n\n"]),
    block_bytes=st.sampled_from([16, 64, 1 << 20]),
)
def test_the_content_hash_is_that_of_the_content(
    tmp_path_factory, bom, before, lines, end, block_bytes
):
    text = (b"\xef\xbb\xbf" if bom else b"") + b"".join(line + b"\n" for line in before)
    text += HEADER.encode() + b"\r\n" + b"\n".join(lines) + end
    path = tmp_path_factory.mktemp("content") / "in.csv"
    path.write_bytes(text)
    digest = InputDigest()
    first_pass(path, read_header(path), reader=BlockReader(block_bytes), digest=digest)
    assert digest.sha256 == hashlib.sha256(text).hexdigest()
    assert digest.content_sha256 == hashlib.sha256(reference_content(text)).hexdigest()


@given(st.lists(st.sampled_from([b"ab", b",", b" ", b"\t", b"\r", b"\n", b"\n\n"]), max_size=40))
def test_lines_said_to_be_their_own_content_are(pieces):
    """The fast path of the content hash: data is_content says is unchanged by the
    content rules is unchanged by them; and content_lines gives the content."""
    data = np.frombuffer(b"".join(pieces), dtype=np.uint8).copy()
    n_words = data.size // 8
    if is_content(data, data[: n_words * 8].view(np.uint64), n_words):
        assert reference_content(data.tobytes()) == data.tobytes()
    out = np.empty(data.size + 1, dtype=np.uint8)
    starts, sizes = np.zeros(CONTENT_PARTS, np.int64), np.zeros(CONTENT_PARTS, np.int64)
    content_lines(data, out, starts, sizes)
    got = b"".join(out[a : a + n].tobytes() for a, n in zip(starts, sizes, strict=True))
    assert got == reference_content(data.tobytes())


def test_clean_lines_are_their_own_content():
    data = np.frombuffer(b"deposit,1,1,5\nwithdrawal,2,2,1.5\n" * 5, dtype=np.uint8).copy()
    n_words = data.size // 8
    assert is_content(data, data[: n_words * 8].view(np.uint64), n_words)


# ---------------------------------------------------------------------------- a growing input


def test_an_input_that_grows_during_the_run_is_read_as_it_was(tmp_path):
    """Rows appended while the run reads are not part of this run: both passes read the
    bytes the file had when it started, and the manifest's hash, size and row count
    describe those bytes."""
    text = csv(*(f"deposit,{1 + n % 3},{n},2" for n in range(1, 200)), "dispute,1,3")
    original = text.encode()
    expected = accounts_job.process(write(tmp_path / "copy.csv", original))
    day = write(tmp_path / "day.csv", original)
    appended = []

    def progress(pass_name: str, nbytes: int) -> None:
        # Once while the first pass reads, once when the second starts: rows that would
        # change the answer (a dispute of tx 6, a new account) if they were read.
        if pass_name not in ("references", "rules"):
            return  # the input's size, before the passes
        if len(appended) < 2 and (pass_name == "rules") == bool(appended):
            with open(day, "ab") as f:
                f.write(b"dispute,1,6\ndeposit,9,1000,5\n" * 3)
            appended.append(pass_name)

    state = new_state(tmp_path / "state")
    result = accounts_job.process(day, state=state, progress=progress, block_bytes=256)
    assert appended == ["references", "rules"]
    assert day.stat().st_size > len(original)
    assert accounts(result) == accounts(expected)
    assert result.summary.rows_read == expected.summary.rows_read
    (applied,) = StateDir(state).manifest().applied
    assert applied.bytes == len(original)
    assert applied.rows == expected.summary.rows_read
    assert applied.sha256 == hashlib.sha256(original).hexdigest()


# ---------------------------------------------------------------------------- a signed state


def edit_manifest(state: Path, change) -> None:
    """A consistent edit: change the manifest's content and recompute its checksum, as
    anyone who can read the format can (the signature, if any, is kept)."""
    body = json.loads((state / MANIFEST).read_text())
    del body["checksum"]
    change(body)
    body["checksum"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    (state / MANIFEST).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")


def forge_balance(state: Path) -> None:
    """Credit client 1 with a fortune, and make the manifest agree."""
    (path,) = state.glob("balances-*.parquet")
    table = pq.read_table(path)
    available = table.column("available").to_pylist()
    available[0] += Decimal(1_000_000)
    forged = table.set_column(1, "available", pa.array(available, table.schema.field(1).type))
    pq.write_table(forged, path)
    data = path.read_bytes()

    def change(body):
        body["files"][path.name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    edit_manifest(state, change)


def mark_unapplied(state: Path) -> None:
    edit_manifest(state, lambda body: body["applied"].pop())


@pytest.fixture
def signed(tmp_path: Path) -> Path:
    """A state made and run with KEY."""
    state = tmp_path / "signed"
    StateDir(state, KEY).init()
    day = write(tmp_path / "n1.csv", csv("deposit,1,1,5", "deposit,2,2,7"))
    accounts_job.process(day, state=state, state_key=KEY)
    return state


@pytest.mark.parametrize("edit", [forge_balance, mark_unapplied])
def test_a_consistent_edit_of_a_signed_state_is_refused(tmp_path, signed, edit):
    edit(signed)
    tonight = write(tmp_path / "tonight.csv", csv("deposit,3,3,1"))
    with pytest.raises(StateError, match="signature") as refused:
        accounts_job.process(tonight, state=signed, state_key=KEY)
    assert refused.value.exit_code == 65
    assert cli("state", "show", signed, env=key_env()).returncode == 65


def key_env(key: bytes | None = KEY) -> dict[str, str | None]:
    """The environment for `cli` with the state key `key`, or with none."""
    return {"ACCOUNTS_JOB_STATE_KEY": None if key is None else key.decode()}


def test_the_key_from_the_environment_and_from_a_file(tmp_path, signed):
    day = write(tmp_path / "n2.csv", csv("deposit,3,3,1"))
    done = cli("run", day, "--state", signed, "-q", env=key_env())
    assert done.returncode == 0, done.stderr
    key_file = write(tmp_path / "key", KEY + b"\n")  # a line end is not part of the key
    day = write(tmp_path / "n3.csv", csv("deposit,3,4,1"))
    done = cli("run", day, "--state", signed, "-q", "--state-key-file", key_file)
    assert done.returncode == 0, done.stderr
    wrong = cli("state", "show", signed, env=key_env(b"another key"))
    assert wrong.returncode == 65 and b"signature" in wrong.stderr
    shown = cli("state", "show", signed, "--state-key-file", key_file, "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["signed"] is True


def test_with_a_key_an_unsigned_state_is_refused(tmp_path):
    state = new_state(tmp_path / "state")
    accounts_job.process(write(tmp_path / "n1.csv", csv("deposit,1,1,5")), state=state)
    tonight = write(tmp_path / "n2.csv", csv("deposit,1,2,5"))
    with pytest.raises(StateError, match="not signed"):
        accounts_job.process(tonight, state=state, state_key=KEY)
    # Signed once, on purpose, it takes the key from then on.
    signing = cli("state", "sign", state, env=key_env())
    assert signing.returncode == 0, signing.stderr
    accounts_job.process(tonight, state=state, state_key=KEY)
    assert StateDir(state, KEY).manifest().signed


def test_without_a_key_a_signed_state_reads_but_takes_no_night(tmp_path, signed):
    """Reading needs no key (the signature is then not checked); a run without the key
    would write an unsigned manifest over a signed one, so it is refused (usage, 2)."""
    shown = cli("state", "show", signed, "--json", env=key_env(None))
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["signed"] is True and info["version"] == 1
    before = snapshot(signed)
    tonight = write(tmp_path / "n2.csv", csv("deposit,3,3,1"))
    refused = cli("run", tonight, "--state", signed, "-q", env=key_env(None))
    assert refused.returncode == 2, refused.stderr
    assert b"ACCOUNTS_JOB_STATE_KEY" in refused.stderr
    assert snapshot(signed) == before
    with pytest.raises(UsageError):
        accounts_job.process(tonight, state=signed)


# ---------------------------------------------------------------------------- state show


def test_state_show_counts_what_the_state_holds(tmp_path):
    """The counts `state show` prints, against numbers computed here from the input in
    plain Python: claimed tx ids are the distinct tx ids of the well-formed deposits
    and withdrawals, accepted or rejected (docs/rules.md §4.3)."""
    night_1 = [
        *(f"deposit,{1 + n % 5},{n},10" for n in range(1, 201)),
        *(f"withdrawal,{1 + n % 5},{n},1000" for n in range(201, 231)),  # insufficient
        "deposit,1,5,1",  # duplicate_tx: claims nothing new
        "deposit,1,x,1",  # invalid_tx: claims nothing
        "deposit,2,300,-1",  # invalid_amount: claims nothing
        "deposit,70000,301,1",  # invalid_client: claims nothing
        "dispute,3,2",
        "chargeback,3,2",  # client 3 is locked
        "deposit,3,400,5",  # account_locked, and claims 400
        "withdraw,6,401,1",  # insufficient_funds, claims 401
    ]
    night_2 = [*(f"deposit,{7 + n % 3},{n},1" for n in range(500, 640)), "dispute,1,6"]
    state = new_state(tmp_path / "state")
    for n, rows in enumerate([night_1, night_2]):
        accounts_job.process(write(tmp_path / f"n{n}.csv", csv(*rows)), state=state)

    claimed, clients = set(), set()
    for line in night_1 + night_2:
        kind, client, tx, *amount = line.split(",")
        if not client.isdigit() or int(client) > 65535 or not tx.isdigit():
            continue
        if kind in ("deposit", "withdrawal", "withdraw"):
            if not re.fullmatch(r"\d+(\.\d+)?", amount[0]) or float(amount[0]) <= 0:
                continue
            claimed.add(int(tx))
        clients.add(int(client))
    ledger_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in state.glob("ledger-*"))

    shown = cli("state", "show", state, "--json")
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["claimed_tx_ids"] == len(claimed) == 200 + 30 + 2 + 140
    assert info["accounts"] == len(clients) == 9
    assert info["locked_accounts"] == 1
    assert info["ledger_rows"] == ledger_rows
    assert info["version"] == 2
    assert [a["rows"] for a in info["applied"]] == [len(night_1), len(night_2)]
    text = cli("state", "show", state).stdout.decode()
    assert f"claimed tx ids   {len(claimed):,}" in text


# ---------------------------------------------------------------------------- ledger order


def ledger_rows(path: Path) -> list[tuple[int, int, str]]:
    t = pq.read_table(path)
    return list(
        zip(
            t.column("tx").to_pylist(),
            t.column("client").to_pylist(),
            t.column("state").to_pylist(),
            strict=True,
        )
    )


def test_a_nights_ledger_rows_are_in_the_order_the_state_promises(tmp_path):
    """state/__init__.py: a ledger holds the night's accepted deposits and withdrawals in
    file order, then the earlier entries whose state the night changed, sorted by tx. A
    tx's latest row is its state, so the order is what later nights read."""
    state = new_state(tmp_path / "state")
    night_1 = csv("deposit,1,30,1", "deposit,2,10,1", "deposit,1,20,1", "deposit,2,40,1")
    accounts_job.process(write(tmp_path / "n1.csv", night_1), state=state)
    night_2 = csv(
        "deposit,1,90,2",
        "dispute,1,30",
        "withdrawal,2,15,1",
        "dispute,2,10",
        "deposit,2,60,2",
        "dispute,2,60",  # tonight's own deposit, disputed tonight
        "dispute,1,20",
        "resolve,1,30",
    )
    accounts_job.process(write(tmp_path / "n2.csv", night_2), state=state)
    assert ledger_rows(state / "ledger-000002.parquet") == [
        # New, in file order.
        (90, 1, "deposited"),
        (15, 2, "withdrawn"),
        (60, 2, "deposited"),
        # Changed tonight, by tx.
        (10, 2, "disputed"),
        (20, 1, "disputed"),
        (30, 1, "resolved"),
        (60, 2, "disputed"),
    ]
    # Night 3 reads those states: tx 60 is disputed (its later row), so it resolves;
    # tx 30 is resolved, so a resolve is not_disputed; tx 10 charges back.
    night_3 = csv("resolve,2,60", "resolve,1,30", "chargeback,2,10")
    result = accounts_job.process(write(tmp_path / "n3.csv", night_3), state=state)
    assert [reason for _, reason, _ in result.rejects.iter_rows()] == ["not_disputed"]
    assert accounts(result)[2] == (Decimal(2), Decimal(0), Decimal(2), True)


# ---------------------------------------------------------------------------- durability


def test_the_state_is_synced_and_committed_after_the_outputs(tmp_path, monkeypatch):
    """The state's commit starts only once every output is in place, and its rename comes
    after every new state file, the new manifest and the folder are on disk; the folder
    is synced again after the rename."""
    state = new_state(tmp_path / "state")
    accounts_job.process(write(tmp_path / "n1.csv", csv("deposit,1,1,5")), state=state)
    out = tmp_path / "out" / "accounts.csv"
    out.parent.mkdir()
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace
    real_create = accounts_job.state.folder.create_file

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst, *args, **kwargs) -> None:
        events.append(("replace", str(dst)))
        real_replace(src, dst, *args, **kwargs)

    def create_file(path: Path):
        events.append(("create", str(path)))
        assert out.exists(), "a state file was written before the outputs were in place"
        return real_create(path)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(accounts_job.state.folder, "create_file", create_file)
    accounts_job.process(
        write(tmp_path / "n2.csv", csv("deposit,1,2,5")), state=state, accounts_to=out
    )
    folder = str(state.resolve())
    rename = events.index(("replace", str(state / MANIFEST)))
    synced_before = {Path(p).name for kind, p in events[:rename] if kind == "fsync"}
    assert {
        "balances-000002.parquet",
        "claimed-000002.parquet",
        "ledger-000002.parquet",
        ".manifest.json.2.tmp",
        "state",
    } <= synced_before
    assert ("fsync", folder) in events[rename + 1 :]
    assert [e for e in events if e[0] == "create"][:2] == [
        ("create", str(state / "balances-000002.parquet")),
        ("create", str(state / "claimed-000002.parquet")),
    ]


def test_nothing_of_the_state_is_written_outside_its_folder(tmp_path, monkeypatch):
    """Every file the state opens for writing is inside it (ledger, balances, claimed,
    manifest, lock)."""
    opened: list[Path] = []
    real_open = accounts_job.state.files.open_file

    def open_file(path: Path, flags: int = os.O_RDONLY):
        if flags & (os.O_WRONLY | os.O_RDWR):
            opened.append(Path(path))
        return real_open(path, flags)

    monkeypatch.setattr(accounts_job.state.files, "open_file", open_file)
    monkeypatch.setattr(accounts_job.state.folder, "open_file", open_file)
    state = new_state(tmp_path / "state")
    accounts_job.process(write(tmp_path / "n1.csv", csv("deposit,1,1,5")), state=state)
    assert {p.parent for p in opened} == {state}
    assert {p.name.split("-")[0] for p in opened} >= {"lock", "balances", "claimed", "ledger"}


def test_claimed_bits_survive_a_round_trip(tmp_path):
    """The claimed ids the state writes are those it read back (guards the re-send
    check's own view of them)."""
    state = new_state(tmp_path / "state")
    ids = [0, 1, 63, 64, 65, 4095, 70_000, 1_000_003]
    accounts_job.process(
        write(tmp_path / "n1.csv", csv(*(f"deposit,1,{i},1" for i in ids))), state=state
    )
    (path,) = state.glob("claimed-*.parquet")
    t = pq.read_table(path)
    words, bits = t.column("word").to_numpy(), t.column("bits").to_numpy()
    found = [
        int(w) * 64 + b
        for w, x in zip(words, bits, strict=True)
        for b in range(64)
        if int(x) >> b & 1
    ]
    assert found == ids
    assert list(words) == sorted(words)
    assert np.bitwise_count(bits).sum() == len(ids)
