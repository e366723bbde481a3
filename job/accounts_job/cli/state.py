"""`accounts-job state show`: what a nightly state folder holds."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..state.folder import describe
from .app import app, guarded

state_app = typer.Typer(
    name="state", help="Inspect a nightly state folder (see run --state).", no_args_is_help=True
)
app.add_typer(state_app)


@state_app.command(epilog="Exit status: 0 shown; 65 the state is damaged or not a state.")
def show(
    folder: Annotated[
        Path, typer.Argument(help="The state folder.", show_default=False, file_okay=False)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of fatal errors.")
    ] = False,
) -> None:
    """List the files applied to FOLDER (name, content hash, rows, when) and its size."""

    def go() -> None:
        info = describe(folder)
        sys.stdout.write(json.dumps(info, indent=2) + "\n" if as_json else as_text(info))

    guarded(debug, go)


def as_text(info: dict) -> str:
    lines = [
        f"state            {info['state']}",
        f"version          {info['version']}",
        f"size             {info['bytes']:,} bytes in {info['files']} files",
        f"accounts         {info['accounts']:,}   locked {info['locked_accounts']:,}",
        f"claimed tx ids   {info['claimed_tx_ids']:,}",
        f"ledger rows      {info['ledger_rows']:,}",
        f"applied files    {len(info['applied'])}",
    ]
    for a in info["applied"]:
        lines.append(
            f"  {a['version']:>4}  {a['applied_at']}  {a['sha256'][:16]}  "
            f"{a['rows']:>12,} rows  {a['bytes']:>14,} bytes  {a['name']}"
        )
    return "\n".join(lines) + "\n"
