"""Nightly runs from the command line: `run --state`, `run --events`, `state show`, and
what a run killed at any moment leaves behind (docs/rules.md §7).

test_api_commit.py kills `accounts_job.process` at the same points."""

from __future__ import annotations

import json
import subprocess
import time

import accounts_job
import pytest
from accounts_job.cli import app
from accounts_job.state.folder import StateDir, describe
from accounts_job.state.manifest import MANIFEST
from support.helpers import (
    HEADER,
    POINTS_AFTER,
    POINTS_BEFORE,
    console_script,
    crash_env,
    hostile_days,
    new_state,
    run_script,
    snapshot,
)
from typer.testing import CliRunner

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def test_run_with_state_then_the_same_file_again(tmp_path):
    day = hostile_days(tmp_path, 1)[0]
    state = new_state(tmp_path / "state")
    first = invoke("run", day, "--state", state, "--out", tmp_path / "a.csv", "--quiet")
    assert first.exit_code == 0, first.stderr
    before = snapshot(state)
    again = invoke("run", day, "--state", state, "--out", tmp_path / "b.csv", "--quiet")
    assert again.exit_code == 0
    assert again.stderr.startswith("accounts-job: ")
    assert "already applied" in again.stderr and "nothing changed" in again.stderr
    assert not (tmp_path / "b.csv").exists()
    assert snapshot(state) == before


def test_state_show_lists_applied_files_and_size(tmp_path):
    state = new_state(tmp_path / "state")
    for day in hostile_days(tmp_path, 2):
        assert invoke("run", day, "--state", state, "--out", tmp_path / "a.csv").exit_code == 0
    shown = invoke("state", "show", state, "--json")
    assert shown.exit_code == 0
    info = json.loads(shown.stdout)
    assert info == describe(state)
    assert [a["name"] for a in info["applied"]] == ["day-0.csv", "day-1.csv"]
    assert info["bytes"] == sum(
        (state / name).stat().st_size for name in StateDir(state).manifest().files
    )
    text = invoke("state", "show", state)
    assert text.exit_code == 0
    assert "day-0.csv" in text.stdout and "day-1.csv" in text.stdout
    assert f"{info['bytes']:,} bytes" in text.stdout


def test_state_show_of_a_damaged_state_exits_65(tmp_path):
    state = new_state(tmp_path / "state")
    day = hostile_days(tmp_path, 1)[0]
    assert invoke("run", day, "--state", state, "--out", tmp_path / "a.csv").exit_code == 0
    (state / MANIFEST).write_text("{}")
    shown = invoke("state", "show", state)
    assert shown.exit_code == 65
    assert shown.stderr.startswith("accounts-job: error: ") and shown.stderr.count("\n") == 1


def test_a_damaged_state_fails_with_65_and_writes_nothing(tmp_path):
    state = new_state(tmp_path / "state")
    d0, d1 = hostile_days(tmp_path, 2)
    assert invoke("run", d0, "--state", state, "--out", tmp_path / "a.csv").exit_code == 0
    (balances,) = state.glob("balances-*.parquet")
    data = bytearray(balances.read_bytes())
    data[len(data) // 2] ^= 0xFF
    balances.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    result = invoke("run", d1, "--state", state, "--out", out / "a.csv", "--events", out / "e.csv")
    assert result.exit_code == 65
    assert "damaged or edited" in result.stderr
    assert list(out.iterdir()) == []


def test_a_second_run_on_the_same_state_fails_fast_with_75(tmp_path):
    state = StateDir(new_state(tmp_path / "state"))
    day = hostile_days(tmp_path, 1)[0]
    with state.locked():
        result = invoke("run", day, "--state", state.path, "--out", tmp_path / "a.csv")
    assert result.exit_code == 75
    assert "in use by another run" in result.stderr
    assert not (tmp_path / "a.csv").exists()


def test_events_output_as_csv(tmp_path):
    day = tmp_path / "in.csv"
    day.write_text(HEADER + "\ndeposit,1,1,10\ndispute,1,1\nchargeback,1,1\nwithdrawal,2,2,1\n")
    result = invoke("run", day, "--events", tmp_path / "e.csv", "--out", tmp_path / "a.csv")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "e.csv").read_text() == (
        "line,client,tx,event,amount\n"
        '2,1,1,"credited",10.0000\n'
        '3,1,1,"held",10.0000\n'
        '4,1,1,"reversed",10.0000\n'
        '4,1,1,"locked",\n'
    )


# All or nothing: a run killed at each point of its commit.


def run_crashing(*args: object, crash_at: str | None = None) -> subprocess.CompletedProcess:
    """The job as a real process, killing itself (SIGKILL) at `crash_at` if given."""
    return run_script(*args, env=crash_env(crash_at))


@pytest.mark.parametrize("point", POINTS_BEFORE + POINTS_AFTER)
def test_a_run_killed_during_its_commit_leaves_a_state_the_next_run_takes(tmp_path, point):
    d0, d1, d2 = hostile_days(tmp_path, 3)
    state = new_state(tmp_path / "state")
    out = tmp_path / "accounts.csv"
    assert run_crashing("run", d0, "--state", state, "--out", out, "-q").returncode == 0
    before = snapshot(state)

    killed = run_crashing("run", d1, "--state", state, "--out", out, "-q", crash_at=point)
    assert killed.returncode == -9, killed.stderr

    manifest = StateDir(state).manifest()  # readable, whatever the moment
    if point in POINTS_BEFORE:
        assert manifest.version == 1
        assert {k: v for k, v in snapshot(state).items() if k in before} == before
    else:
        assert manifest.version == 2

    # The next run of the same file: applies it, or says it already was.
    again = run_crashing("run", d1, "--state", state, "--out", out, "-q")
    assert again.returncode == 0, again.stderr
    assert ("already applied" in again.stderr.decode()) == (point in POINTS_AFTER)
    assert run_crashing("run", d2, "--state", state, "--out", out, "-q").returncode == 0

    # The same as one run over the three days, and nothing left behind.
    whole = tmp_path / "whole.csv"
    whole.write_text(d0.read_text() + "".join(p.read_text().split("\n", 1)[1] for p in (d1, d2)))
    expected = accounts_job.process(whole).accounts
    assert out.read_text() == expected.write_csv()
    manifest = StateDir(state).manifest()
    assert manifest.version == 3
    assert sorted(p.name for p in state.iterdir()) == sorted([MANIFEST, "lock", *manifest.files])


def test_a_run_killed_mid_file_leaves_the_state_as_it_was(tmp_path):
    d0, d1 = hostile_days(tmp_path, 2, rows=200_000)
    state = new_state(tmp_path / "state")
    first = run_crashing("run", d0, "--state", state, "-q", "--out", tmp_path / "a.csv")
    assert first.returncode == 0
    before = snapshot(state)
    proc = subprocess.Popen(
        [str(console_script()), "run", d1, "--state", state, "--out", tmp_path / "b.csv"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Killed once it holds the lock (so it is past start-up and into the work).
    lock = state / "lock"
    for _ in range(2000):
        if lock.read_text().strip() == str(proc.pid):
            break
        if proc.poll() is not None:
            break
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    assert StateDir(state).manifest().version in (1, 2)
    if StateDir(state).manifest().version == 1:
        assert {k: v for k, v in snapshot(state).items() if k in before} == before
        assert not (tmp_path / "b.csv").exists()
    again = run_crashing("run", d1, "--state", state, "-q", "--out", tmp_path / "b.csv")
    assert again.returncode == 0
    assert StateDir(state).manifest().version == 2
