"""The all-or-nothing commit, through the Python API (`accounts_job.process`).

docs/rules.md §6: outputs appear whole or not at all; §7: with a state, the outputs are
written first and the state is committed in one step after them, so a run stopped at any
moment leaves the previous state or the new one. The library owns this guarantee, so it
is tested here without the command line (test_cli.py and test_nightly_cli.py test the
same through `accounts-job run`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import accounts_job
import accounts_job.engine.ledger
import accounts_job.io.blocks
import accounts_job.job
import pytest
from accounts_job import AlreadyApplied, EventsWriter, JobError, RejectsWriter
from accounts_job.errors import OutputError, ReadError
from accounts_job.state.folder import StateDir
from accounts_job.state.manifest import MANIFEST
from support.example import WORKED_EXAMPLE_CSV
from support.helpers import (
    POINTS_AFTER,
    POINTS_BEFORE,
    fail_the_second_pass,
    hostile_days,
    new_state,
    process_in_a_child,
    snapshot,
)

# Summary fields that differ from run to run.
VOLATILE = ("seconds", "rows_per_second", "state_bytes")


def targets(folder: Path) -> dict[str, Path]:
    """Every output `process` writes, each in a folder of its own under `folder`."""
    names = {
        "accounts_to": "accounts.parquet",
        "rejects_to": "rejects.csv",
        "events_to": "events.parquet",
        "summary_to": "summary.json",
    }
    out = {}
    for option, name in names.items():
        (folder / option).mkdir(parents=True, exist_ok=True)
        out[option] = folder / option / name
    return out


def listing(folder: Path) -> set[str]:
    """Every name in `folder`, hidden ones (temporary files) included."""
    return {p.name for p in folder.iterdir()}


# ---------------------------------------------------------------------------- fatal errors


@dataclass(frozen=True)
class Failure:
    """A run that fails part way: the error it raises, and how to make it fail.

    `setup(outputs, monkeypatch)` may change the outputs (a missing folder, say), make a
    folder in an output's place, or patch the package."""

    error: type[BaseException]
    setup: Callable[[dict[str, Path], pytest.MonkeyPatch], None]


def _bug_after_two_batches(outputs: dict[str, Path], mp: pytest.MonkeyPatch) -> None:
    """The rules fail on the third batch, after two batches' rejects and events were
    streamed to their temporary files."""
    real = accounts_job.engine.ledger.Ledger.apply
    calls = []

    def apply(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("kaput")
        return real(self, *args, **kwargs)

    mp.setattr(accounts_job.engine.ledger.Ledger, "apply", apply)


def _read_fails_mid_file(outputs: dict[str, Path], mp: pytest.MonkeyPatch) -> None:
    """The disk fails in the second pass, after two small blocks were read."""
    fail_the_second_pass(mp)


def _summary_folder_missing(outputs: dict[str, Path], mp: pytest.MonkeyPatch) -> None:
    outputs["summary_to"] = outputs["summary_to"].parent / "nope" / "summary.json"


def _summary_is_a_directory(outputs: dict[str, Path], mp: pytest.MonkeyPatch) -> None:
    outputs["summary_to"].mkdir()


def _accounts_cannot_be_renamed(outputs: dict[str, Path], mp: pytest.MonkeyPatch) -> None:
    """The last step: every output written, and the accounts' rename fails."""
    real = accounts_job.job.AtomicFile.commit

    def commit(self):
        if self.path == outputs["accounts_to"]:
            self.discard()
            raise OutputError(f"cannot write {self.path}: disk full")
        real(self)

    mp.setattr(accounts_job.job.AtomicFile, "commit", commit)


FAILURES = {
    "bug_after_two_batches": Failure(RuntimeError, _bug_after_two_batches),
    "read_fails_mid_file": Failure(ReadError, _read_fails_mid_file),
    "summary_folder_missing": Failure(OutputError, _summary_folder_missing),
    "summary_is_a_directory": Failure(OutputError, _summary_is_a_directory),
    "accounts_cannot_be_renamed": Failure(OutputError, _accounts_cannot_be_renamed),
}


def run_failing(case: Failure, example: Path, outputs: dict[str, Path], mp, **options) -> None:
    case.setup(outputs, mp)
    with pytest.raises(case.error):
        accounts_job.process(example, batch_size=2, **outputs, **options)


@pytest.mark.parametrize("case", FAILURES.values(), ids=FAILURES.keys())
def test_a_fatal_error_leaves_no_output_and_no_temporary_file(
    case: Failure, example: Path, outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = targets(outdir)
    folders = {option: path.parent for option, path in outputs.items()}
    run_failing(case, example, outputs, monkeypatch)
    for option, folder in folders.items():
        target = outputs[option]
        # Nothing but what the case made itself: a folder in the output's place, empty.
        # (A missing folder the case named is not made either: `folder` stays empty.)
        assert listing(folder) == ({target.name} if target.is_dir() else set()), option
        if target.is_dir():
            assert listing(target) == set()


@pytest.mark.parametrize("case", FAILURES.values(), ids=FAILURES.keys())
def test_existing_outputs_survive_a_fatal_error(
    case: Failure, example: Path, outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = targets(outdir)
    case.setup(outputs, monkeypatch)
    # An earlier run's output at every name the case leaves usable.
    old = {
        option: f"old {option}\n".encode()
        for option, path in outputs.items()
        if path.parent.is_dir() and not path.exists()
    }
    assert len(old) >= 3
    for option, content in old.items():
        outputs[option].write_bytes(content)
    with pytest.raises(case.error):
        accounts_job.process(example, batch_size=2, **outputs)
    for option, content in old.items():
        assert outputs[option].read_bytes() == content, option
        assert listing(outputs[option].parent) == {outputs[option].name}, option


@pytest.mark.parametrize("case", FAILURES.values(), ids=FAILURES.keys())
def test_a_fatal_error_on_a_second_night_leaves_the_state_as_it_was(
    case: Failure, tmp_path: Path, example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = new_state(tmp_path / "state")
    first = tmp_path / "night-1.csv"
    first.write_text("type,client,tx,amount\ndeposit,1,100,5\ndeposit,3,101,2\n")
    accounts_job.process(first, state=state)
    before = snapshot(state)
    outputs = targets(tmp_path / "out")
    run_failing(case, example, outputs, monkeypatch, state=state)
    assert snapshot(state) == before
    assert StateDir(state).manifest().version == 1
    monkeypatch.undo()
    # The same file can still be applied, with every output.
    outputs = targets(tmp_path / "again")
    accounts_job.process(example, state=state, **outputs)
    assert StateDir(state).manifest().version == 2
    assert all(path.exists() for path in outputs.values())


def test_a_rename_failing_after_another_output_was_renamed_leaves_no_output(
    example: Path, outdir: Path
) -> None:
    """A folder appears at the summary's name while the run reads (its name was free
    when the run opened its outputs), so the summary's rename, after the accounts', fails:
    the run fails, and no output may stay."""
    outputs = targets(outdir)
    summary = outputs["summary_to"]

    def progress(_pass: str, _nbytes: int) -> None:
        summary.mkdir(exist_ok=True)
        (summary / "keep").touch()  # a folder that is not empty: no rename replaces it

    with pytest.raises(OutputError):
        accounts_job.process(example, progress=progress, **outputs)
    assert listing(summary.parent) == {summary.name}
    for option in ("accounts_to", "rejects_to", "events_to"):
        assert listing(outputs[option].parent) == set(), option


def test_writers_of_your_own_are_committed_with_the_outputs(example: Path, outdir: Path) -> None:
    rejects, events = RejectsWriter(outdir / "r.csv"), EventsWriter(outdir / "e.parquet")
    accounts_job.process(
        example, accounts_to=outdir / "a.csv", rejects_to=rejects, events_to=events
    )
    assert listing(outdir) == {"a.csv", "r.csv", "e.parquet"}
    assert (outdir / "a.csv").read_text() == WORKED_EXAMPLE_CSV


def test_writers_of_your_own_are_discarded_on_a_fatal_error(
    example: Path, outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rejects, events = RejectsWriter(outdir / "r.csv"), EventsWriter(outdir / "e.parquet")
    _bug_after_two_batches({}, monkeypatch)
    with pytest.raises(RuntimeError, match="kaput"):
        accounts_job.process(example, batch_size=2, rejects_to=rejects, events_to=events)
    assert listing(outdir) == set()


def test_an_input_already_applied_writes_nothing(tmp_path: Path, example: Path) -> None:
    state = new_state(tmp_path / "state")
    accounts_job.process(example, state=state)
    before = snapshot(state)
    outputs = targets(tmp_path / "out")
    with pytest.raises(AlreadyApplied):
        accounts_job.process(example, state=state, **outputs)
    assert AlreadyApplied.exit_code == 0 and issubclass(AlreadyApplied, JobError)
    assert snapshot(state) == before
    for path in outputs.values():
        assert listing(path.parent) == set()


# ---------------------------------------------------------------------------- kills

# The crash points of a commit (accounts_job.faults), in order. All come after the outputs
# were renamed into place; the state's new manifest replaces the old one at the last.


def contents(outputs: dict[str, Path]) -> dict[str, object]:
    """What the outputs hold: the bytes of each file, the summary's stable fields."""
    found: dict[str, object] = {}
    for option, path in outputs.items():
        if option == "summary_to":
            summary = json.loads(path.read_text())
            found[option] = {k: v for k, v in summary.items() if k not in VOLATILE}
        else:
            found[option] = path.read_bytes()
    return found


@pytest.fixture(scope="module")
def nights(tmp_path_factory) -> dict:
    """Two nights of generated hostile data; a state holding the first; and what an
    uninterrupted second night writes, and its state's files."""
    folder = tmp_path_factory.mktemp("nights")
    first, second = hostile_days(folder, 2)
    state = new_state(folder / "state-after-night-1")
    accounts_job.process(first, state=state)
    clean_state = folder / "clean-state"
    shutil.copytree(state, clean_state)
    outputs = targets(folder / "clean")
    accounts_job.process(second, state=clean_state, **outputs)
    return {
        "second": second,
        "state": state,
        "expected": contents(outputs),
        "files": set(StateDir(clean_state).manifest().files),
    }


@pytest.mark.parametrize("point", POINTS_BEFORE + POINTS_AFTER)
def test_a_second_night_killed_during_its_commit(tmp_path: Path, nights: dict, point: str):
    state = tmp_path / "state"
    shutil.copytree(nights["state"], state)
    before = snapshot(state)
    outputs = targets(tmp_path / "out")

    killed = process_in_a_child(nights["second"], crash_at=point, state=state, **outputs)
    assert killed.returncode == -9, killed.stderr.decode()

    # Every point is past the outputs' rename: they are whole, as an uninterrupted run's.
    assert contents(outputs) == nights["expected"]
    for path in outputs.values():
        assert listing(path.parent) == {path.name}
    manifest = StateDir(state).manifest()  # readable, whatever the moment
    if point in POINTS_BEFORE:
        assert manifest.version == 1
        assert {k: v for k, v in snapshot(state).items() if k in before} == before
    else:
        assert manifest.version == 2
        assert set(manifest.files) == nights["files"]

    # The same call again: applies the file, or says it already was; either way the
    # outputs are those of an uninterrupted run, byte for byte.
    try:
        accounts_job.process(nights["second"], state=state, **outputs)
    except AlreadyApplied:
        assert point in POINTS_AFTER
    else:
        assert point in POINTS_BEFORE
    manifest = StateDir(state).manifest()
    assert manifest.version == 2
    assert set(manifest.files) == nights["files"]
    assert contents(outputs) == nights["expected"]
    for path in outputs.values():
        assert listing(path.parent) == {path.name}
    if point in POINTS_BEFORE:
        assert sorted(p.name for p in state.iterdir()) == sorted(
            [MANIFEST, "lock", *manifest.files]
        )


def test_a_second_night_not_killed_in_a_child_is_the_uninterrupted_run(
    tmp_path: Path, nights: dict
) -> None:
    """The child itself, without a crash point, writes what the in-process run writes:
    the comparison above compares like with like."""
    state = tmp_path / "state"
    shutil.copytree(nights["state"], state)
    outputs = targets(tmp_path / "out")
    done = process_in_a_child(nights["second"], state=state, **outputs)
    assert done.returncode == 0, done.stderr.decode()
    assert contents(outputs) == nights["expected"]
    assert StateDir(state).manifest().version == 2
