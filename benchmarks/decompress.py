"""Decompressors for a compressed input, side by side, and what a `.csv.gz` run costs.

Part 1: each candidate reads the compressed file as a stream and writes the plain bytes
to a spool file in a temporary folder, as the job does for a compressed input
(io/spool.py). Every candidate of a form runs once per round, in turns, for `--repeat`
rounds; the table gives the median seconds, MB/s of plain bytes, and the time against the
first reader of the same form: the standard library's, or for zstd (which Python 3.11's
standard library lacks) the job's own (1.00 = as fast).

Part 2 (whole processes, alternating, `--repeat` times each):

- plain:   `accounts-job run FILE.csv --out accounts.parquet --quiet`;
- gz:      the same over FILE.csv.gz;
- decomp:  a Python process that spools FILE.csv.gz with the decompressor the job uses
           (io/spool.py's), and nothing else (its start-up and imports included);
- and, in this process, the job's spooling of FILE.csv.gz alone (decompressor, spool
  file written), without any process start-up.

The target: gz <= decomp + 1.2 x plain, that is (gz - decomp) / plain <= 1.2; shown
with both measures of the decompressor's own time.

Candidates missing from the environment are listed as such. To try them all:

    python3 -m uv pip install isal zlib-ng rapidgzip xopen zstandard indexed_bzip2
    python3 -m uv run python benchmarks/decompress.py --repeat 3
    python3 -m uv run python benchmarks/decompress.py --file benchmarks/data/tx-10m-c65000-s7.csv
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import lzma
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
CHUNK = 1 << 20

Opener = Callable[[Path], IO[bytes]]


def _stdlib_zlib(path: Path) -> IO[bytes]:
    """zlib.decompressobj over 1 MiB reads, multi-member: the least the stdlib can do."""

    class Stream:
        def __init__(self) -> None:
            self.f = open(path, "rb")  # noqa: SIM115 - closed by close()
            self.d = zlib.decompressobj(31)
            self.pending = b""

        def read(self, n: int = CHUNK) -> bytes:
            while True:
                if self.d.unconsumed_tail:
                    return self.d.decompress(self.d.unconsumed_tail, n)
                if self.d.eof:
                    rest = self.d.unused_data
                    if not rest:
                        rest = self.f.read(CHUNK)
                        if not rest:
                            return b""
                    self.d = zlib.decompressobj(31)
                    out = self.d.decompress(rest, n)
                else:
                    data = self.f.read(CHUNK)
                    if not data:
                        return self.d.flush()
                    out = self.d.decompress(data, n)
                if out:
                    return out

        def close(self) -> None:
            self.f.close()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()

    return Stream()  # type: ignore[return-value]


class _Readable:
    """read() over a reader that has only readinto (the job's own readers)."""

    def __init__(self, reader, raw) -> None:
        self.reader, self.raw = reader, raw
        self.buffer = memoryview(bytearray(CHUNK))

    def read(self, n: int = CHUNK) -> bytes:
        got = self.reader.readinto(self.buffer[:n])
        return bytes(self.buffer[:got])

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.raw.close()


def _job_zstd(path: Path) -> IO[bytes]:
    from accounts_job.io.spool import _Counted, _ZstdFrames

    raw = open(path, "rb")  # noqa: SIM115 - closed by _Readable
    return _Readable(_ZstdFrames(_Counted(raw, None)), raw)  # type: ignore[return-value]


def candidates() -> dict[str, list[tuple[str, Opener | None]]]:
    """Per form, (name, opener or None when the package is missing); the stdlib first."""

    def maybe(module: str, make: Callable[[object], Opener]) -> Opener | None:
        try:
            mod = __import__(module, fromlist=["_"])
        except ImportError:
            return None
        return make(mod)

    gz: list[tuple[str, Opener | None]] = [
        ("gzip (stdlib)", lambda p: gzip.open(p, "rb")),  # noqa: SIM115
        ("zlib.decompressobj (stdlib)", _stdlib_zlib),
        ("isal.igzip", maybe("isal.igzip", lambda m: lambda p: m.open(p, "rb"))),
        (
            "isal.igzip_threaded (1 thread)",
            maybe("isal.igzip_threaded", lambda m: lambda p: m.open(p, "rb", threads=1)),
        ),
        ("zlib_ng.gzip_ng", maybe("zlib_ng.gzip_ng", lambda m: lambda p: m.open(p, "rb"))),
        (
            "zlib_ng.gzip_ng_threaded (1 thread)",
            maybe("zlib_ng.gzip_ng_threaded", lambda m: lambda p: m.open(p, "rb", threads=1)),
        ),
        (
            "rapidgzip (2 threads)",
            maybe("rapidgzip", lambda m: lambda p: m.open(str(p), parallelization=2)),
        ),
        (
            "rapidgzip (1 thread)",
            maybe("rapidgzip", lambda m: lambda p: m.open(str(p), parallelization=1)),
        ),
        ("xopen", maybe("xopen", lambda m: lambda p: m.xopen(p, "rb", threads=0))),
    ]
    zst: list[tuple[str, Opener | None]] = [
        ("zstandard decompressobj (the job's reader)", _job_zstd),
        (
            "zstandard",
            maybe(
                "zstandard",
                lambda m: (
                    lambda p: m.ZstdDecompressor().stream_reader(
                        open(p, "rb"),  # noqa: SIM115
                        closefd=True,
                        read_across_frames=True,
                    )
                ),
            ),
        ),
        (
            "backports.zstd",
            maybe("backports.zstd", lambda m: lambda p: m.open(p, "rb")),
        ),
        ("xopen", maybe("xopen", lambda m: lambda p: m.xopen(p, "rb", threads=0))),
    ]
    return {
        "gzip": gz,
        "zstd": zst,
        "bzip2": [
            ("bz2 (stdlib)", lambda p: bz2.open(p, "rb")),
            (
                "indexed_bzip2 (2 threads)",
                maybe("indexed_bzip2", lambda m: lambda p: m.open(str(p), parallelization=2)),
            ),
            (
                "indexed_bzip2 (1 thread)",
                maybe("indexed_bzip2", lambda m: lambda p: m.open(str(p), parallelization=1)),
            ),
        ],
        "xz": [("lzma (stdlib)", lambda p: lzma.open(p, "rb"))],
    }


def spool_with(opener: Opener, path: Path, folder: Path) -> int:
    """Decompress `path` into a file in `folder`; the plain bytes written."""
    out = folder / "spool"
    total = 0
    with opener(path) as f, open(out, "wb") as w:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            w.write(chunk)
            total += len(chunk)
    out.unlink()
    return total


def compress(plain: Path, folder: Path) -> dict[str, Path]:
    """The plain file in each form, made once with the command-line tools beside it."""
    made = {}
    for form, suffix, cmd in (
        ("gzip", ".gz", ["gzip", "-6", "-c"]),
        ("zstd", ".zst", ["zstd", "-q", "-3", "-c"]),
        ("bzip2", ".bz2", ["bzip2", "-9", "-c"]),
        ("xz", ".xz", ["xz", "-6", "-T1", "-c"]),
    ):
        target = folder / (plain.name + suffix)
        if not target.exists():
            if shutil.which(cmd[0]) is None:
                continue
            print(f"compressing {target.name} ...", file=sys.stderr)
            with open(target, "wb") as out:
                subprocess.run([*cmd, str(plain)], stdout=out, check=True)
        made[form] = target
    return made


def part1(files: dict[str, Path], repeat: int, tmp: Path) -> None:
    print("| form | decompressor | seconds | MB/s (plain) | vs first of its form |")
    print("| --- | --- | ---: | ---: | ---: |")
    for form, options in candidates().items():
        if form not in files:
            continue
        present = [(n, o) for n, o in options if o is not None]
        times: dict[str, list[float]] = {n: [] for n, _ in present}
        size = 0
        for _ in range(repeat):
            for name, opener in present:
                started = time.perf_counter()
                size = spool_with(opener, files[form], tmp)
                times[name].append(time.perf_counter() - started)
        base = statistics.median(times[present[0][0]])
        for name, opener in options:
            if opener is None:
                print(f"| {form} | {name} | not installed | | |")
                continue
            t = statistics.median(times[name])
            print(f"| {form} | {name} | {t:.2f} | {size / t / 1e6:,.0f} | {t / base:.2f} |")


SPOOL_ALONE = """
import sys
from accounts_job.io.spool import Spools, describe
with Spools() as spools:
    spools.ready(describe(sys.argv[1]))
"""


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def part2(plain: Path, gz: Path, repeat: int, tmp: Path) -> None:
    job = str(BIN / "accounts-job")
    out = str(tmp / "accounts.parquet")
    cmds = {
        "plain": [job, "run", str(plain), "--out", out, "--quiet"],
        "gz": [job, "run", str(gz), "--out", out, "--quiet"],
        "decomp": [sys.executable, "-c", SPOOL_ALONE, str(gz)],
    }
    times: dict[str, list[float]] = {k: [] for k in cmds}
    timed(cmds["plain"])  # warm: the page cache, and the kernels' cache
    for _ in range(repeat):
        for name, cmd in cmds.items():
            times[name].append(timed(cmd))
    m = {k: statistics.median(v) for k, v in times.items()}
    from accounts_job.io.spool import Spools, describe

    alone = []
    for _ in range(repeat):
        started = time.perf_counter()
        with Spools(tmp) as spools:
            spools.ready(describe(str(gz)))
        alone.append(time.perf_counter() - started)
    m["spool in-process"] = statistics.median(alone)
    print()
    print("| run | median s | vs plain |")
    print("| --- | ---: | ---: |")
    for name in m:
        print(f"| {name} | {m[name]:.2f} | {m[name] / m['plain']:.2f} |")
    print()
    for own in ("decomp", "spool in-process"):
        budget = m[own] + 1.2 * m["plain"]
        print(
            f"with {own} as the decompressor's time: (gz - it) / plain = "
            f"{(m['gz'] - m[own]) / m['plain']:.2f} (target <= 1.20); "
            f"gz / (it + 1.2 x plain) = {m['gz'] / budget:.2f} (target <= 1.00)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--file", type=Path, default=HERE / "data" / "tx-10m-c65000-s7.csv", help="plain CSV"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-decompressors", action="store_true", help="part 2 only")
    args = parser.parse_args()
    if not args.file.exists():
        sys.exit(f"{args.file} is missing: make it with benchmarks/run.py --sizes 10m")
    files = compress(args.file, args.file.parent)
    print(f"{args.file.name}: {args.file.stat().st_size / 1e6:,.0f} MB plain; ", end="")
    print(", ".join(f"{k} {p.stat().st_size / 1e6:,.0f} MB" for k, p in files.items()))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, repeat {args.repeat}\n")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not args.skip_decompressors:
            part1(files, args.repeat, tmp)
        if "gzip" in files:
            part2(args.file, files["gzip"], args.repeat, tmp)


if __name__ == "__main__":
    main()
