"""`accounts-job warmup`: compile every kernel ahead of the first run (image builds, CI,
Dask workers), and say where the compiled code went."""

from __future__ import annotations

from typing import Annotated

import typer

from ..warmup import warm
from .app import app, guarded


@app.command(epilog="Exit status: 0 done (compiled, or nothing to compile); 70 internal error.")
def warmup(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of fatal errors.")
    ] = False,
) -> None:
    """Compile every kernel a run can use into the cache, so that no run compiles.

    Runs the job over small built-in samples that take every path (both parsers, every
    reject, the nightly state, the sharded run). Running it again only loads.
    """

    def go() -> None:
        w = warm()
        if w.compiled:
            print(
                f"compiled {w.compiled} kernel signatures for {w.cpu} in {w.seconds:.1f} s "
                f"(loaded {w.loaded} from the cache)"
            )
        else:
            print(
                f"nothing to compile: loaded {w.loaded} kernel signatures for {w.cpu} from "
                f"the cache in {w.seconds:.1f} s"
            )
        for folder in w.cache_dirs:
            print(f"cache: {folder}")

    guarded(debug, go)
