"""The job: one input in, every output written and the state committed, all or nothing.

`process` is the library's front door and owns the guarantee the command line promises
(docs/rules.md §6, §7): it opens every output before the work (a bad path fails in a
second, not after an hour of reading), runs, writes each output beside its final name,
and only then makes them visible, and commits the nightly state last. A failure or a
kill at any moment leaves no output and the state as it was; a kill after the outputs
and before the state's commit leaves the input not applied, and running it again writes
the same outputs and commits. The `run` command only maps its options onto this call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .engine.parser import DEFAULT_BATCH_SIZE
from .engine.result import Result
from .engine.run import Progress, run_file
from .errors import UsageError
from .faults import crash_point
from .io.header import check_input
from .io.source import is_url
from .io.writers import (
    AtomicFile,
    EventsWriter,
    Format,
    RejectsWriter,
    TableWriter,
    format_for,
    write_accounts_to,
    write_csv,
)
from .state.folder import StateDir
from .state.night import Night


def process(
    source: str | Path,
    *,
    accounts_to: str | Path | BinaryIO | None = None,
    accounts_format: Format | None = None,
    rejects_to: str | Path | TableWriter | None = None,
    events_to: str | Path | TableWriter | None = None,
    summary_to: str | Path | None = None,
    keep_rejects: bool = True,
    state: str | Path | StateDir | None = None,
    cluster: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    block_bytes: int | None = None,
    progress: Progress | None = None,
) -> Result:
    """Run the job over the transactions CSV `source`.

    Every output named is written whole or not at all, and with `state` the state is
    committed only after every output is in place (see this module's docstring).

    Parameters
    ----------
    source : str or Path
        The transactions CSV (docs/rules.md §2). A URL only with `cluster`.
    accounts_to : str, Path or binary stream, optional
        Write the accounts here (docs/rules.md §5.1). A path is replaced atomically; a
        stream (such as ``sys.stdout.buffer``) is written CSV once the run succeeded.
    accounts_format : {"csv", "parquet"}, optional
        The accounts' format; by default from `accounts_to`'s suffix.
    rejects_to, events_to : str, Path or TableWriter, optional
        Stream the rejected rows (§5.2) or the events (§5.3) to this file, CSV or
        Parquet by suffix; or to a writer of your own, which the job then commits or
        discards with the other outputs.
    summary_to : str or Path, optional
        Write the summary here as JSON.
    keep_rejects : bool, default True
        Keep the rejected rows in memory for ``Result.rejects`` (when they are not
        streamed to `rejects_to`). A run over a hostile file may reject many rows.
    state : str, Path or StateDir, optional
        A nightly state folder: start from what earlier runs left there, apply `source`
        once, commit the new state last. An input whose content was already applied
        raises AlreadyApplied, and nothing is written.
    cluster : str, optional
        ``tcp://HOST:PORT`` of a Dask scheduler, or ``local:N`` for N worker processes
        here: the run is sharded by client over the workers, with the same result
        (distributed/cluster.py). Takes neither `state` nor `events_to`.
    batch_size : int
        Lines the rules take at a time; changes memory and speed, never the answer.
    block_bytes : int, optional
        Bytes read at a time (default io.blocks.BLOCK_BYTES); likewise.
    progress : callable, optional
        Called as ``progress(pass_name, nbytes)`` as the passes advance.

    Returns
    -------
    Result
        The accounts, the rejects (unless streamed or not kept) and the summary.

    Raises
    ------
    JobError
        A fatal error (docs/rules.md §6); its subclass says which, its `exit_code` the
        command line's status. Nothing was written and the state is as it was.

    Examples
    --------
    >>> result = process("tx.csv", accounts_to="accounts.parquet")  # doctest: +SKIP
    >>> result.accounts  # doctest: +SKIP
    """
    if cluster is not None and (state is not None or events_to is not None):
        raise UsageError("a --cluster run takes neither --state nor --events")
    if cluster is None and is_url(source):
        raise UsageError(f"{source}: a URL input needs --cluster; a plain run reads local files")
    fmt = _accounts_format(accounts_to, accounts_format)
    for extra in (rejects_to, events_to):
        if isinstance(extra, (str, Path)):
            format_for(extra)  # an unknown suffix fails before anything is opened
    check_input(source)  # so do a missing input and a pipe (docs/rules.md §6)

    with _Outputs() as outputs:
        accounts_file = outputs.file(accounts_to)
        summary_file = outputs.file(summary_to)
        rejects = outputs.table(rejects_to, RejectsWriter)
        events = outputs.table(events_to, EventsWriter)
        night = outputs.night(state, Path(source)) if state is not None else None
        keep = keep_rejects and rejects is None
        if cluster is not None:
            # Dask is imported only for a cluster run.
            from .distributed.cluster import process_on_cluster

            result = process_on_cluster(
                source, cluster, batch_size=batch_size, rejects_to=rejects, keep_rejects=keep
            )
        else:
            result = run_file(
                Path(source),
                batch_size=batch_size,
                block_bytes=block_bytes,
                rejects_to=rejects,
                events_to=events,
                keep_rejects=keep,
                progress=progress,
                night=night,
            )
        if accounts_file is not None:
            write_accounts_to(result.accounts_table, accounts_file.tmp, fmt)
        if summary_file is not None:
            summary_file.tmp.write_text(result.summary.to_json())
        outputs.commit(result, accounts_to if _is_stream(accounts_to) else None)
    return result


def _is_stream(target: object) -> bool:
    return target is not None and not isinstance(target, (str, Path))


def _accounts_format(target: str | Path | BinaryIO | None, override: Format | None) -> Format:
    if target is None:
        return override or "csv"
    if _is_stream(target):
        fmt = format_for("stream.csv", override)
        if fmt != "csv":
            raise UsageError(
                "parquet output needs a file path (--out PATH); a stream such as stdout "
                "takes CSV only"
            )
        return fmt
    return format_for(target, override)  # type: ignore[arg-type]


@dataclass
class _Outputs:
    """Everything a run will make visible, opened before the work: each output a
    temporary file beside its name, and the state's lock. Committed in order, outputs
    first and the state last; discarded whole on any failure, a kill included (the
    temporary names are all that is left then, and the state is as before)."""

    files: list[AtomicFile | TableWriter] = field(default_factory=list)
    state: Night | None = None
    committed: bool = False

    def file(self, target: str | Path | BinaryIO | None) -> AtomicFile | None:
        if target is None or _is_stream(target):
            return None
        output = AtomicFile(target)  # type: ignore[arg-type]
        self.files.append(output)
        return output

    def table(
        self, target: str | Path | TableWriter | None, kind: type[TableWriter]
    ) -> TableWriter | None:
        if target is None:
            return None
        writer = target if isinstance(target, TableWriter) else kind(target)  # type: ignore[call-arg]
        self.files.append(writer)
        return writer

    def night(self, folder: str | Path | StateDir, source: Path) -> Night:
        self.state = Night.open(folder, source)
        return self.state

    def commit(self, result: Result, stream: BinaryIO | None) -> None:
        """The outputs first, then the state: a run stopped in between leaves the input
        not applied, and running it again writes the same outputs and commits."""
        for f in self.files:
            f.commit()
        if stream is not None:
            write_csv(result.accounts_table, stream)
            stream.flush()
        crash_point("outputs-written")
        if self.state is not None:
            self.state.commit(result.summary)
        self.committed = True

    def __enter__(self) -> _Outputs:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.committed:
            return
        for f in self.files:
            f.discard()
        if self.state is not None:
            self.state.discard()
