"""`accounts-job state init | show | sign`: make, inspect and sign a nightly state folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..state.folder import StateDir, describe
from ..state.manifest import state_key
from .app import app, guarded

state_app = typer.Typer(
    name="state",
    help="Make, inspect or sign a nightly state folder (see run --state).",
    no_args_is_help=True,
)
app.add_typer(state_app)

Folder = Annotated[
    Path, typer.Argument(help="The state folder.", show_default=False, file_okay=False)
]
KeyFile = Annotated[
    Path | None,
    typer.Option(
        help="The state key (default: the ACCOUNTS_JOB_STATE_KEY environment variable, if set).",
        metavar="PATH",
        dir_okay=False,
    ),
]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks of fatal errors.")]


@state_app.command(
    epilog="Exit status: 0 made, or already a state; 65 a state that is damaged, or state "
    "files without a manifest that are not an interrupted first night's; 66 the key file "
    "cannot be read; 73 the folder cannot be made or written, or is not empty and not a "
    "state; 75 a run holds the state."
)
def init(folder: Folder, state_key_file: KeyFile = None, debug: Debug = False) -> None:
    """Make FOLDER a new, empty state (creating it if needed), for run --state.

    A folder that already is a state is left as it is. A folder that holds only what an
    interrupted first night left (state files of version 1, no manifest.json) is taken
    over: those files are removed."""

    def go() -> None:
        state = StateDir(folder, state_key(key_file=state_key_file))
        manifest, made = state.init()
        if made:
            print(f"accounts-job: {folder} is a new state folder (version 0)", file=sys.stderr)
        else:
            print(
                f"accounts-job: {folder} is a state folder already (version "
                f"{manifest.version}): nothing to do",
                file=sys.stderr,
            )

    guarded(debug, go)


@state_app.command(
    epilog="Exit status: 0 shown; 65 the state is damaged or edited; 66 not a state folder, "
    "or the key file cannot be read."
)
def show(
    folder: Folder,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    state_key_file: KeyFile = None,
    debug: Debug = False,
) -> None:
    """List the files applied to FOLDER (name, content hash, rows, when) and its size."""

    def go() -> None:
        info = describe(folder, state_key(key_file=state_key_file))
        sys.stdout.write(json.dumps(info, indent=2) + "\n" if as_json else as_text(info))

    guarded(debug, go)


@state_app.command(
    epilog="Exit status: 0 signed; 2 no key; 65 the state is damaged, or signed with "
    "another key; 66 not a state folder, or the key file cannot be read; 73 the folder "
    "cannot be written; 75 another run holds the state."
)
def sign(folder: Folder, state_key_file: KeyFile = None, debug: Debug = False) -> None:
    """Sign the state in FOLDER with the state key.

    Once, to start using a key on a state made without one. Every file is checked whole
    first, so the signature vouches for an intact state."""

    def go() -> None:
        manifest = StateDir(folder, state_key(key_file=state_key_file)).sign()
        print(f"accounts-job: {folder} (version {manifest.version}) is signed", file=sys.stderr)

    guarded(debug, go)


def as_text(info: dict) -> str:
    lines = [
        f"state            {info['state']}",
        f"version          {info['version']}{'   signed' if info['signed'] else ''}",
        f"size             {info['bytes']:,} bytes in {info['files']} files",
        f"accounts         {info['accounts']:,}   locked {info['locked_accounts']:,}",
        f"claimed tx ids   {info['claimed_tx_ids']:,}",
        f"ledger rows      {info['ledger_rows']:,}",
        f"applied files    {len(info['applied'])}",
    ]
    for a in info["applied"]:
        lines.append(
            f"  {a['version']:>4}  {a['applied_at']}  {(a['content_sha256'] or a['sha256'])[:16]}  "
            f"{a['rows']:>12,} rows  {a['bytes']:>14,} bytes  {a['name']}"
        )
    return "\n".join(lines) + "\n"
