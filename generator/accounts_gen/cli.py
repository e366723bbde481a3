"""`accounts-gen`: the command line over generate()."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from .generate import GenStats, SizeError, check_sizes, generate
from .options import DEFAULT_MIX, HOSTILE_MIX, Mix, Shape
from .rows import MAX_CLIENTS

app = typer.Typer(add_completion=False)


def _format_mix(mix: Mix) -> str:
    return ", ".join(f"{kind}={weight:g}" for kind, weight in asdict(mix).items())


@app.command()
def main(
    clients: Annotated[
        int,
        typer.Option("--clients", "-c", help=f"Number of clients, 1..{MAX_CLIENTS}."),
    ] = 65_000,
    transactions: Annotated[
        int,
        typer.Option(
            "--transactions",
            "-n",
            help="Data rows to write, header not counted; at least --clients.",
        ),
    ] = 10_000_000,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Random seed, >= 0.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="File to write, whole or not at all. Default: standard output.",
            dir_okay=False,
        ),
    ] = None,
    mix: Annotated[
        str | None,
        typer.Option(
            help=(
                "Relative weights of the row kinds after the opening deposits, as "
                "kind=weight pairs; kinds left out keep their default, kind=0 drops one. "
                f"Default: {_format_mix(DEFAULT_MIX)}; with --hostile: "
                f"{_format_mix(HOSTILE_MIX)}."
            ),
        ),
    ] = None,
    hostile: Annotated[
        bool,
        typer.Option(
            "--hostile",
            help=(
                "Keep the job's reject paths busy: tx ids reused across clients, disputes of "
                "other clients' txs, of withdrawals and of txs yet to come, resolves and "
                "chargebacks of undisputed txs, many chargebacks, huge amounts."
            ),
        ),
    ] = False,
    spaces: Annotated[
        bool, typer.Option("--spaces", help="Spaces and tabs around fields and header names.")
    ] = False,
    withdraw_spelling: Annotated[
        bool,
        typer.Option(
            "--withdraw-spelling",
            help=(
                "About half the withdrawals spelled 'withdraw'; some types and the header "
                "names in mixed or upper case ('Deposit', 'WITHDRAW', 'Type')."
            ),
        ),
    ] = False,
    crlf: Annotated[bool, typer.Option("--crlf", help="CRLF line ends.")] = False,
    quotes: Annotated[
        bool, typer.Option("--quotes", help="Double-quote some fields, and the header names.")
    ] = False,
    ragged: Annotated[
        bool,
        typer.Option(
            "--ragged",
            help=(
                "Well-formed rows of uneven length: disputes, resolves and chargebacks "
                "without the amount field or with an (ignored) amount, and rows with an "
                "extra empty field."
            ),
        ),
    ] = False,
    bom: Annotated[bool, typer.Option("--bom", help="Start with a UTF-8 byte-order mark.")] = False,
    malformed_rate: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help=(
                "Fraction of the rows after the opening deposits replaced by malformed "
                "ones: unknown types, bad clients, tx ids and amounts, extra non-empty "
                "fields, blank lines."
            ),
        ),
    ] = 0.0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No summary line on standard error.")
    ] = False,
) -> None:
    """Write a CSV of client transactions for accounts-job, fast and reproducibly.

    The same options and seed give the same bytes. The header 'type,client,tx,amount'
    comes first, then one deposit per client (clients 1..N, client i with tx i), then rows
    drawn from the mix: deposits and withdrawals of random clients with fresh, increasing
    tx ids (some withdrawals overdraw), disputes of earlier deposits, resolves and
    chargebacks of disputed txs, their amount field empty.
    """
    try:
        check_sizes(clients, transactions, seed)
    except SizeError as error:
        raise typer.BadParameter(str(error), param_hint=f"'--{error.option}'") from None
    try:
        chosen_mix = Mix.parse(mix, HOSTILE_MIX if hostile else DEFAULT_MIX) if mix else None
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="'--mix'") from None
    shape = Shape(
        spaces=spaces,
        withdraw_spelling=withdraw_spelling,
        crlf=crlf,
        quotes=quotes,
        ragged=ragged,
        bom=bom,
        malformed_rate=malformed_rate,
    )
    try:
        stats = generate(
            out if out is not None else typer.get_binary_stream("stdout"),
            clients=clients,
            transactions=transactions,
            seed=seed,
            mix=chosen_mix,
            shape=shape,
            hostile=hostile,
        )
    except BrokenPipeError:
        # The reader stopped early (`| head`): its choice, not an error. Point stdout at
        # /dev/null so the final flush at exit does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(0) from None
    except OSError as error:
        reason = error.strerror or error
        typer.echo(f"accounts-gen: cannot write {out or 'standard output'}: {reason}", err=True)
        raise typer.Exit(1) from None
    if not quiet:
        typer.echo(_summary(stats, out), err=True)


def _summary(stats: GenStats, out: Path | None) -> str:
    where = f" to {out}" if out else ""
    extra = f", {stats.malformed:,} malformed" if stats.malformed else ""
    return (
        f"accounts-gen: wrote {stats.rows:,} rows{extra} ({stats.bytes / 1e6:,.1f} MB)"
        f"{where} in {stats.seconds:.2f} s"
    )
