"""The generator's Python API: write one file of transactions, chunk by chunk."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

import numpy as np

from .atomic import atomic_writer
from .options import DEFAULT_MIX, HOSTILE_MIX, KINDS, PLAIN, Mix, Shape
from .render import Renderer
from .rows import MAX_CLIENTS, RowMaker

CHUNK_ROWS = 1 << 19
"""Rows drawn and written at a time. Larger chunks are no faster, only bigger: with one
chunk drawn while the previous one is rendered, the process peaks near 300 MB."""


@dataclass(frozen=True)
class GenStats:
    """What a call to generate wrote."""

    rows: int
    """Data rows, header not counted; equals the `transactions` asked for."""
    bytes: int
    """Bytes written, header and byte-order mark included."""
    seconds: float
    kinds: dict[str, int]
    """Rows per kind as drawn, before any were replaced by garbage."""
    malformed: int
    """Rows replaced by garbage, blank lines included."""
    blank: int


class SizeError(ValueError):
    """Sizes that cannot make a file; `option` names the culprit (clients, transactions, seed)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


def check_sizes(clients: int, transactions: int, seed: int) -> None:
    """Raise SizeError, with a message fit for a user, if the sizes cannot make a file."""
    if not 1 <= clients <= MAX_CLIENTS:
        raise SizeError(
            "clients",
            f"clients must be within 1..{MAX_CLIENTS}, got {clients}: "
            "client ids are unsigned 16-bit and numbered from 1",
        )
    if transactions < clients:
        raise SizeError(
            "transactions",
            f"transactions must be at least clients ({clients}), got {transactions}: "
            "the file opens with one deposit per client",
        )
    if seed < 0:
        raise SizeError("seed", f"seed must be >= 0, got {seed}")


def generate(
    out: BinaryIO | TextIO | str | os.PathLike[str],
    *,
    clients: int,
    transactions: int,
    seed: int,
    mix: Mix | None = None,
    shape: Shape = PLAIN,
    hostile: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> GenStats:
    """Write a CSV of `transactions` rows after a header naming type, client, tx, amount.

    The file opens with one deposit per client (clients 1..`clients`, tx i for client i),
    then follows `mix` (default DEFAULT_MIX, or HOSTILE_MIX when `hostile`). Same
    arguments, same bytes: the output depends only on the arguments, `chunk_rows` included.

    `out` is a path, written atomically (a temporary file in the same folder, renamed when
    complete), or an open stream, binary or text. `hostile` bends the content towards the
    job's reject paths: reused tx ids, disputes of other clients' txs, of withdrawals and of
    txs still to come, stray resolves and chargebacks, huge amounts.

    Raises SizeError (a ValueError) when the sizes cannot make a file, see check_sizes.
    """
    check_sizes(clients, transactions, seed)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if mix is None:
        mix = HOSTILE_MIX if hostile else DEFAULT_MIX
    if isinstance(out, (str, os.PathLike)):
        with atomic_writer(Path(out)) as stream:
            return _write(stream, clients, transactions, seed, mix, shape, hostile, chunk_rows)
    return _write(out, clients, transactions, seed, mix, shape, hostile, chunk_rows)


def _write(
    out: BinaryIO | TextIO,
    clients: int,
    transactions: int,
    seed: int,
    mix: Mix,
    shape: Shape,
    hostile: bool,
    chunk_rows: int,
) -> GenStats:
    started = time.perf_counter()
    write = _byte_writer(out)
    # Separate streams for content and text, so a shape never changes what rows say.
    content_seed, text_seed = np.random.SeedSequence(seed).spawn(2)
    maker = RowMaker(clients, mix, np.random.default_rng(content_seed), hostile)
    renderer = Renderer(shape, np.random.default_rng(text_seed))

    header = renderer.header()
    write(header)
    size = len(header)
    kinds = np.zeros(len(KINDS), np.int64)
    malformed = blank = 0
    sizes = [chunk_rows] * (transactions // chunk_rows)
    if transactions % chunk_rows:
        sizes.append(transactions % chunk_rows)
    # Drawing the next chunk overlaps with rendering this one: both numpy and Polars
    # release the GIL for their bulk work. One worker keeps the draws in order.
    with ThreadPoolExecutor(max_workers=1) as ahead:
        pending = ahead.submit(maker.take, sizes[0])  # there is always one: clients >= 1
        for following in [*sizes[1:], 0]:
            rows = pending.result()
            if following:
                pending = ahead.submit(maker.take, following)
            text = renderer.render(rows)
            write(text.data)
            size += len(text.data)
            kinds += np.bincount(rows.kind, minlength=len(KINDS))
            malformed += text.malformed
            blank += text.blank
    out.flush()
    return GenStats(
        rows=transactions,
        bytes=size,
        seconds=time.perf_counter() - started,
        kinds={kind: int(count) for kind, count in zip(KINDS, kinds, strict=True)},
        malformed=malformed,
        blank=blank,
    )


def _byte_writer(out: BinaryIO | TextIO) -> Callable[[bytes], object]:
    """A function writing bytes to `out`, through the byte buffer of a text stream."""
    if isinstance(out, io.TextIOBase):
        buffer = getattr(out, "buffer", None)
        if buffer is not None:
            # Bypass newline translation, so the bytes are exactly the rendered ones.
            out.flush()
            return buffer.write
        return lambda data: out.write(data.decode())
    return out.write
