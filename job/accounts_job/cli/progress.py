"""A progress bar on stderr for long runs, silent when stderr is not a terminal."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from ..engine.run import Progress

_PASSES = {"references": "finding references", "rules": "applying rules"}


@contextlib.contextmanager
def progress_bar(path: Path, enabled: bool) -> Iterator[Progress | None]:
    """Yield a callback that advances one bar per pass over `path`, or None if disabled."""
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

    try:
        size = path.stat().st_size
    except OSError:
        size = None
    with RichProgress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        tasks = {name: bar.add_task(label, total=size) for name, label in _PASSES.items()}

        def advance(name: str, nbytes: int) -> None:
            bar.advance(tasks[name], nbytes)

        yield advance
