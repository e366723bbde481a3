"""What an input is, from its first bytes (docs/rules.md §2.10).

An input's form is told by its magic bytes, never by its name: a gzipped file called
`day.csv` is read as gzip, and a `day.csv.gz` that holds plain text as text. `sniff` is
the one place that decides; the spool (io/spool.py) decompresses the compressed forms,
and the forms the job cannot read fail with one line that says what the input looks like
and what it can read.

>>> sniff(b"\\x1f\\x8b\\x08\\x00")
'gzip'
>>> sniff(b"type,client,tx,amount\\n")
'csv'
>>> sniff(b"PK\\x03\\x04")
'zip'
"""

from __future__ import annotations

import io
from typing import Literal

from ..errors import FormError, HeaderError
from .header import _find_header

Form = Literal["csv", "gzip", "zstd", "bz2", "xz", "zip", "parquet", "arrow", "binary"]

# The forms a CSV may arrive in, and the decompressed ones among them.
COMPRESSED: tuple[Form, ...] = ("gzip", "zstd", "bz2", "xz")
READABLE: tuple[Form, ...] = ("csv", *COMPRESSED)
# Bytes `sniff` looks at: the longest magic, and enough text to tell it from binary.
SNIFF_BYTES = 4096

_MAGIC: tuple[tuple[bytes, Form], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty archive
    (b"PAR1", "parquet"),
    (b"ARROW1", "arrow"),  # the Arrow IPC file format
    (b"\xff\xff\xff\xff", "arrow"),  # the Arrow IPC stream format's continuation marker
)

_NAMES: dict[str, str] = {
    "zip": "a ZIP archive",
    "parquet": "a Parquet file",
    "arrow": "an Arrow IPC file",
    "binary": "binary data, not text",
}

SUPPORTED = "CSV text, or CSV compressed with gzip, zstd, bzip2 or xz"


def sniff(head: bytes, complete: bool | None = None) -> Form:
    """The form of an input whose first bytes are `head` (up to SNIFF_BYTES of them).

    Binary is a head that does not look like text (a NUL byte in its first line, or more
    than a quarter of it control bytes other than tab, CR and LF, or bytes that are not
    UTF-8) *and* whose header line is unusable: such an input would fail on its header
    anyway (docs/rules.md §2.2, status 65), and the message says what it is instead. So
    the rules stay as they are: a CSV whose header reads is read, however hostile its
    rows, and those rows are rejected (§2.1). An empty input is "csv" (it then has no
    header).

    Parameters
    ----------
    head : bytes
        The input's first bytes.
    complete : bool, optional
        Whether `head` is the whole input; by default, when it is shorter than
        SNIFF_BYTES.

    Returns
    -------
    str
        One of "csv", "gzip", "zstd", "bz2", "xz", "zip", "parquet", "arrow", "binary".
    """
    for magic, form in _MAGIC:
        if head.startswith(magic):
            return form
    head = head[:SNIFF_BYTES]
    if complete is None:
        complete = len(head) < SNIFF_BYTES
    text = head.decode("utf-8", errors="replace")
    bad = sum(1 for c in text if c == "\ufffd" or (c < " " and c not in "\t\r\n"))
    odd = b"\x00" in head.split(b"\n", 1)[0] or (len(head) >= _MIN_SNIFFED and 4 * bad > len(text))
    if odd and _header_fails(head, complete):
        return "binary"
    return "csv"


def _header_fails(head: bytes, complete: bool) -> bool:
    """Whether the header in `head` is unusable, as the real read would find it. A head
    that does not look like text and holds no line end at all is taken for binary: no
    CSV starts with SNIFF_BYTES of such bytes."""
    if not complete:
        if b"\n" not in head.lstrip(b" \t\r\n"):
            return True
        head = head[: head.rindex(b"\n") + 1]  # whole lines only
    try:
        _find_header(io.BytesIO(head), "input")  # type: ignore[arg-type]
    except HeaderError:
        return True
    return False


# Fewer bytes than this are not judged by their share of text (a short hostile line).
_MIN_SNIFFED = 64


def check_header_error(name: str, head: bytes) -> None:
    """After the header of the input `name` failed: raise FormError instead if its first
    bytes `head` say it is not CSV at all (for a reader that did not sniff it first)."""
    check_readable(name, sniff(head))


def check_readable(name: str, form: Form) -> None:
    """Raise FormError (exit 65) unless the job reads inputs of `form`."""
    if form in ("parquet", "arrow"):
        # Typed inputs are read on their own path (io/typed.py), one source a run.
        raise FormError(
            f"{name} looks like {_NAMES[form]}: a run reads Parquet or Arrow as its only "
            "input (a file, a folder or a glob of Parquet files), not among CSV inputs"
        )
    if form not in READABLE:
        raise FormError(f"{name} looks like {_NAMES[form]}: the job reads {SUPPORTED}")
