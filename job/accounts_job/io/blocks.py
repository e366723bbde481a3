"""The input as a stream of raw blocks of whole lines.

Both passes read the file the same way: large blocks of bytes straight into a reused
buffer, each cut after its last line end, the partial line carried over to the next
block. Nothing is decoded or copied per line: the compiled kernels read the bytes where
they lie, and memory holds two buffers however large the file.

While the kernels work on one block, a thread reads the next into the other buffer (a
file read releases the GIL), so the copy from the page cache costs no wall time.

A line is everything up to an LF; a CR before it is the parser's business
(docs/rules.md §2.1, kernels/parse.py).
A line holding a NUL byte is not text we accept: each block lists them, and the engine
rejects them as `malformed_row` (the scan for line ends notices them for free).

A line of MAX_LINE_BYTES or more is too long (docs/rules.md §2.1): it is `malformed_row`
too, listed with the NUL lines. Memory stays bounded however long a line is: once one
fills a buffer past the limit, the reader keeps its first MAX_LINE_BYTES bytes, reads
the rest into the same buffer without keeping it, and puts an LF after what it kept.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import ReadError
from ..kernels.bytes import LF
from ..kernels.lines import last_line_end, newline_positions, next_line_end
from .source import open_input

BLOCK_BYTES = 8 << 20
# docs/rules.md §2.1: a line of this many bytes or more before its LF is too long. A
# rejected line's raw is kept up to this many bytes, so a raw of exactly this length is
# a line that was cut.
MAX_LINE_BYTES = 1 << 20
# Bytes read at a time where lines are skipped (the lines before the data, see blocks()).
_SKIP_READ = 64 << 10


@dataclass
class Block:
    """Consecutive whole lines of the input. Valid until the next block is read."""

    first_line: int  # 1-based line number of the first line
    data: np.ndarray  # uint8: the bytes, the last line's LF included if it has one
    ends: np.ndarray  # int64: line i is data[ends[i - 1] + 1 : ends[i]] (ends[-1] = -1)
    # int64, sorted: indices of the lines that hold a NUL byte or are too long (of
    # `max_line` bytes or more; in `data` a line cut short holds exactly `max_line`).
    malformed_rows: np.ndarray
    # The buffer from data[0] on as 64-bit words, reaching at least 8 bytes past the
    # data: a kernel may load any 8 bytes that start in data (see kernels/parse.py's load8).
    words: np.ndarray
    max_line: int = MAX_LINE_BYTES

    def __len__(self) -> int:
        return self.ends.size

    def line_start(self, i: int) -> int:
        return int(self.ends[i - 1]) + 1 if i > 0 else 0


_NO_ENDS = np.zeros(0, dtype=np.int64)


def line_ends(data: np.ndarray, out: np.ndarray = _NO_ENDS) -> tuple[np.ndarray, int, bool, int]:
    """(out, count, has_nul, longest): the positions of the LFs in `data` (a uint8 array
    whose start is 8-byte aligned) are out[:count]; `out` is reused if large enough;
    `longest` is the most bytes a line ended by one of them holds."""
    n_words = data.size // 8
    words = data[: n_words * 8].view(np.uint64)
    return newline_positions(words, data[n_words * 8 :], n_words, out)


def skip_line(f: BinaryIO) -> None:
    """Read `f` past the end of the line it is in, holding at most _SKIP_READ bytes."""
    while True:
        chunk = f.readline(_SKIP_READ)
        if not chunk or chunk.endswith(b"\n"):
            return


class BlockReader:
    """Reads files as blocks of whole lines into two buffers it keeps from file to file
    (both passes read the same file: the second reuses the memory of the first)."""

    def __init__(self, block_bytes: int | None = None, max_line: int | None = None) -> None:
        """`block_bytes`: the most a block holds (default BLOCK_BYTES), unless one line is
        longer, which grows the buffers up to twice `max_line` (default MAX_LINE_BYTES,
        docs/rules.md §2.1): a longer line is cut."""
        self.block_bytes = block_bytes or BLOCK_BYTES
        self.max_line = max_line or MAX_LINE_BYTES
        self._buffers: list[np.ndarray] = []
        self._ends = _NO_ENDS  # line ends, reused from block to block

    def _buffers_for(self, size: int) -> list[np.ndarray]:
        # Not larger than the file needs: a small file does not pay for big buffers.
        size = max(8, min(self.block_bytes, size + 8))
        if not self._buffers or _capacity(self._buffers[0]) < size:
            self._buffers = _new_buffers(size)
        return self._buffers

    def blocks(
        self,
        path: str | Path,
        skip_lines: int = 0,
        lines: bool = True,
        digest: hashlib._Hash | None = None,
        span: tuple[int, int] | None = None,
        end_at: int | None = None,
        content: Callable[[np.ndarray], None] | None = None,
    ) -> Iterator[Block]:
        """Yield the lines after the first `skip_lines` of `path`, in blocks of whole
        lines. A block is valid until the next one is read. Raises ReadError if reading
        fails part way.

        With `lines=False` the lines are not looked for, for a pass that walks the bytes
        itself: a block's `ends` holds only its last line end, `first_line` is not
        counted, and `malformed_rows` is empty. `digest` (a hashlib object) is fed every
        byte of the file, skipped lines included.

        `span` (start, stop) reads only those bytes of the file, which must begin and end
        at line boundaries; line numbers then count from the span's first line.

        `end_at` reads no byte at or past it: a file that grows while it is read is read
        as it was when the run took its size, and both passes read the same bytes. A
        file that ends before `end_at` (it shrank) is a ReadError.

        `content` is called with every line read, whole lines and in file order, in this
        thread: the skipped lines one by one, then each block's bytes before the block
        is yielded (the first pass takes the content hash from it, engine/references.py).
        """
        line = skip_lines + 1
        limit = self.max_line
        try:
            # The pool is shut down (its read finished) before the file is closed.
            with open_input(path) as f, ThreadPoolExecutor(1) as pool:
                if skip_lines:
                    _skip_lines(f, skip_lines, digest, content)
                if span is not None:
                    f.seek(span[0])
                if span is not None:
                    stop = span[1]
                elif end_at is not None:
                    stop = end_at
                else:
                    stop = os.fstat(f.fileno()).st_size
                bounded = span is not None or end_at is not None
                buffers = self._buffers_for(stop - f.tell())
                current = 0
                filled = 0  # bytes in the current buffer, a carried partial line included
                cap = _capacity(buffers[0])
                offset = f.tell()  # where the next read starts

                def read(into: np.ndarray) -> Future[int]:
                    # Never past `stop`: a span ends where the next one starts, and
                    # `end_at` where the file ended when the run began. A file read whole
                    # without either reads until the read says the end.
                    if bounded:
                        into = into[: max(0, stop - offset)]
                    return pool.submit(_read, f, into, digest)

                pending: Future[int] = read(buffers[current][:cap])
                at_end = False
                while not at_end:
                    got = pending.result()
                    at_end = got == 0
                    if at_end and end_at is not None and span is None and offset < stop:
                        raise ReadError(
                            f"reading {path} failed: it was cut short while being read "
                            f"({offset:,} of {stop:,} bytes)"
                        )
                    filled += got
                    offset += got
                    buf = buffers[current][:filled]
                    ends, has_nul, longest = self._ends_of(buf, lines)
                    if ends.size == 0 and not at_end:
                        # The buffer holds part of one line, which starts at its start.
                        if filled < cap:
                            pending = read(buffers[current][filled:cap])
                            continue
                        if cap < 2 * limit:
                            # Grow: to hold the limit, and as much again to read on in.
                            grown_cap = min(2 * cap, 2 * limit)
                            grown = _new_buffers(grown_cap)
                            grown[current][:filled] = buf
                            buffers = self._buffers = grown
                            cap = grown_cap
                            pending = read(buffers[current][filled:cap])
                            continue
                        # A line of `limit` bytes or more: keep its first `limit` bytes,
                        # read the rest of it into the buffer after them and let it go.
                        buffer = buffers[current]
                        words = buffer.view(np.uint64)
                        while True:
                            got = read(buffer[limit:cap]).result()
                            offset += got
                            if got == 0:
                                at_end, filled = True, limit
                                break
                            end = next_line_end(buffer[: limit + got], words, limit)
                            if end < limit + got:
                                # Its LF after the kept part, the next lines after that.
                                rest, after = limit + got - end - 1, end + 1
                                buffer[limit] = LF
                                buffer[limit + 1 : limit + 1 + rest] = buffer[after : after + rest]
                                filled = limit + 1 + rest
                                break
                        buf = buffer[:filled]
                        ends, has_nul, longest = self._ends_of(buf, lines)
                    if at_end and filled and (ends.size == 0 or ends[-1] != filled - 1):
                        ends = np.append(ends, filled)  # the last line lacks its line end
                        start = int(ends[-2]) + 1 if ends.size > 1 else 0
                        longest = max(longest, filled - start)
                    if ends.size == 0:
                        continue  # at the end, with nothing left
                    consumed = min(int(ends[-1]) + 1, filled)
                    # Carry the partial last line into the other buffer and start reading
                    # after it while this block is being worked on.
                    rest = filled - consumed
                    other = 1 - current
                    buffers[other][:rest] = buf[consumed:]
                    if not at_end:
                        pending = read(buffers[other][rest:cap])
                    data = buf[:consumed]
                    if content is not None:
                        content(data)
                    malformed = _NO_ROWS
                    if lines and (has_nul or longest >= limit):
                        malformed = _malformed_rows(data, ends, has_nul, limit)
                    words = buffers[current].view(np.uint64)
                    yield Block(line, data, ends, malformed, words, limit)
                    line += ends.size
                    current, filled = other, rest
        except OSError as e:
            # Without `lines` the blocks' lines are not counted: no line number to give.
            where = f" at or after line {line}" if lines else ""
            raise ReadError(f"reading {path} failed{where}: {e.strerror or e}") from e

    def _ends_of(self, buf: np.ndarray, lines: bool) -> tuple[np.ndarray, bool, int]:
        """(line ends, has a NUL, longest line) of a buffer; without `lines`, only its
        last line end, and neither NULs nor lengths are looked for."""
        if not lines:
            return last_line_end(buf), False, 0
        self._ends, count, has_nul, longest = line_ends(buf, self._ends)
        return self._ends[:count], has_nul, longest


def _skip_lines(
    f: BinaryIO,
    count: int,
    digest: hashlib._Hash | None,
    content: Callable[[np.ndarray], None] | None = None,
) -> None:
    """Read `f` past its first `count` lines, a block of bytes at a time (a line at a
    time would be a read per byte: the file is unbuffered), feeding `digest` what they
    hold, and `content` the lines, whole (they are few: blank lines and the header,
    bounded by the header's limits)."""
    skipped = []
    while count > 0:
        chunk = f.read(_SKIP_READ)
        if not chunk:
            return
        found = chunk.count(b"\n")
        if found >= count:
            at = -1
            for _ in range(count):
                at = chunk.index(b"\n", at + 1)
            f.seek(at + 1 - len(chunk), os.SEEK_CUR)
            chunk = chunk[: at + 1]
        if digest is not None:
            digest.update(chunk)
        if content is not None:
            skipped.append(chunk)
        count -= found
    if content is not None and skipped:
        content(np.frombuffer(b"".join(skipped), dtype=np.uint8))


def _read(f: BinaryIO, into: np.ndarray, digest: hashlib._Hash | None) -> int:
    """Read into `into` (in the reading thread), feeding `digest` what was read."""
    got = f.readinto(into)
    if digest is not None and got:
        digest.update(into[:got])
    return got


_NO_ROWS = np.zeros(0, dtype=np.int64)
# Bytes past a buffer's capacity: room for the last 8-byte load (see Block.words).
_SLACK = 16


def _new_buffers(capacity: int) -> list[np.ndarray]:
    # np.empty, not bytearray: nothing is zeroed that the read will overwrite. Whole
    # 64-bit words, so a buffer views as words.
    size = (capacity + _SLACK + 7) // 8 * 8
    return [np.empty(size, dtype=np.uint8) for _ in range(2)]


def _capacity(buffer: np.ndarray) -> int:
    return buffer.size - _SLACK


def _malformed_rows(data: np.ndarray, ends: np.ndarray, has_nul: bool, limit: int) -> np.ndarray:
    """Indices of the lines that hold a NUL byte or `limit` bytes or more (rare: only
    called when a line does)."""
    lengths = np.diff(ends, prepend=-1) - 1  # an unended last line's end is past it
    rows = np.flatnonzero(lengths >= limit)
    if has_nul:
        rows = np.union1d(rows, np.searchsorted(ends, np.flatnonzero(data == 0)))
    return rows.astype(np.int64)
