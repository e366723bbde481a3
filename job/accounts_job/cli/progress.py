"""A progress bar on stderr for long runs, silent when stderr is not a terminal."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ..engine.run import Progress

_PASSES = {
    "reading": "reading input",
    "references": "finding references",
    "rules": "applying rules",
}


@contextlib.contextmanager
def progress_bar(enabled: bool) -> Iterator[Progress | None]:
    """Yield a callback that advances one bar per pass, or None if disabled.

    The first bar follows the inputs' bytes as given, compressed ones too, as they are
    read (a compressed input or a pipe is spooled then, io/spool.py); the two passes'
    bars grow their totals as each input's plain size becomes known ("size"), the first
    as each input's size as given does ("input")."""
    if not enabled:
        yield None
        return
    # Imported here: a cron run never pays for rich.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import (
        Progress as RichProgress,
    )

    with RichProgress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        tasks = {name: bar.add_task(label, total=None) for name, label in _PASSES.items()}
        totals = dict.fromkeys(_PASSES, 0)

        def advance(name: str, nbytes: int) -> None:
            if name == "size":
                for task in ("references", "rules"):
                    totals[task] += nbytes
                    bar.update(tasks[task], total=totals[task])
                return
            if name == "input":  # an input's size as given, before it is read
                totals["reading"] += nbytes
                bar.update(tasks["reading"], total=totals["reading"])
                return
            bar.advance(tasks[name], nbytes)
            if name == "reading":
                # A pipe's size is not known before its end: the total grows with it.
                done = bar.tasks[tasks[name]].completed
                if done > totals[name]:
                    totals[name] = int(done)
                    bar.update(tasks[name], total=totals[name])

        yield advance
