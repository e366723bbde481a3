"""Tests of the test-data generator, accounts_gen.

Generated files are read back with the standard csv module and checked against the input
rules of docs/rules.md §2 with a small validator here, independent of the accounts_job
package.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from accounts_gen import render
from accounts_gen.cli import app
from accounts_gen.generate import SizeError, generate
from accounts_gen.options import DEFAULT_MIX, HOSTILE_MIX, KINDS, Mix, Shape
from typer.testing import CliRunner

MONEY = ("deposit", "withdrawal")
REFERENCES = ("dispute", "resolve", "chargeback")
AMOUNT_RE = re.compile(r"[0-9]+\.?[0-9]*|\.[0-9]+")
CANONICAL_AMOUNT_RE = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]{0,3}[1-9])?")
MESSY = Shape(spaces=True, withdraw_spelling=True, crlf=True, quotes=True, ragged=True, bom=True)

# Small chunks so that every file crosses several chunk boundaries.
SMALL = {"clients": 40, "transactions": 6_000, "seed": 7, "chunk_rows": 997}


def make(**options: object) -> bytes:
    buffer = io.BytesIO()
    generate(buffer, **{**SMALL, **options})  # type: ignore[arg-type]
    return buffer.getvalue()


def records(data: bytes) -> list[list[str]]:
    """All lines after the header, as csv fields ([] for a blank line)."""
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    return lines[1:]


def clean(field: str) -> str:
    """A field as the job reads it: trimmed of spaces and tabs, then unquoted."""
    field = field.strip(" \t")
    if len(field) >= 2 and field[0] == field[-1] == '"':
        field = field[1:-1]
    return field


def normalised(fields: list[str]) -> tuple[str, str, str, str]:
    """(type, client, tx, amount) of a well-formed row, type in its canonical spelling."""
    values = [clean(field) for field in fields] + ["", "", "", ""]
    kind = values[0].lower()
    kind = "withdrawal" if kind == "withdraw" else kind
    amount = values[3] if kind in MONEY else ""
    return kind, values[1], values[2], amount


def problem(fields: list[str]) -> str | None:
    """The reject reason of docs/rules.md §2.9 if the row is malformed, 'blank' for a blank
    line (§2.1), else None."""
    if not fields:
        return "blank"
    values = [clean(field) for field in fields]
    if any(values[4:]):
        return "malformed_row"
    kind, client, tx, amount = normalised(fields)
    if kind not in (*MONEY, *REFERENCES):
        return "unknown_type"
    if not (re.fullmatch("[0-9]+", client) and int(client) <= 65_535):
        return "invalid_client"
    if not (re.fullmatch("[0-9]+", tx) and int(tx) <= 4_294_967_295):
        return "invalid_tx"
    if kind in MONEY:
        if not AMOUNT_RE.fullmatch(amount):
            return "invalid_amount"
        value = Decimal(amount)
        if value <= 0 or value * 10_000 != int(value * 10_000):
            return "invalid_amount"
        if value * 10_000 > 2**63 - 1:
            return "invalid_amount"
    return None


def plain_rows(data: bytes) -> list[tuple[str, int, int, str]]:
    return [(t, int(c), int(x), a) for t, c, x, a in records(data)]


# --- reproducibility -------------------------------------------------------------------


def test_same_seed_gives_same_bytes() -> None:
    assert make() == make()
    assert make(shape=MESSY, hostile=True) == make(shape=MESSY, hostile=True)


def test_different_seed_gives_different_bytes() -> None:
    assert make(seed=1) != make(seed=2)


def test_path_output_equals_stream_output(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    stats = generate(target, **SMALL)  # type: ignore[arg-type]
    assert target.read_bytes() == make()
    assert stats.bytes == target.stat().st_size
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_text_stream_output_equals_bytes() -> None:
    text = io.StringIO()
    generate(text, **SMALL)  # type: ignore[arg-type]
    assert text.getvalue().encode() == make()


# --- content ---------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_rows", [1, 997, 1 << 20])
def test_row_count_is_transactions_plus_header(chunk_rows: int) -> None:
    data = make(chunk_rows=chunk_rows, transactions=2_500)
    assert data.count(b"\n") == 2_501
    assert data.endswith(b"\n")
    assert data.startswith(b"type,client,tx,amount\n")


def test_row_count_holds_with_every_shape() -> None:
    data = make(shape=Shape(**{**vars(MESSY), "malformed_rate": 0.2}), hostile=True)
    assert data.count(b"\r\n") == data.count(b"\n") == SMALL["transactions"] + 1


@pytest.mark.parametrize("chunk_rows", [128, 1 << 20])
def test_file_opens_with_one_deposit_per_client(chunk_rows: int) -> None:
    rows = plain_rows(make(clients=300, transactions=1_000, chunk_rows=chunk_rows))
    for i, (kind, client, tx, amount) in enumerate(rows[:300], start=1):
        assert (kind, client, tx) == ("deposit", i, i)
        assert problem([kind, str(client), str(tx), amount]) is None


def test_opening_deposits_stay_clean_with_garbage_around() -> None:
    rows = records(make(clients=300, transactions=1_000, shape=Shape(malformed_rate=0.5)))
    assert all(problem(fields) is None for fields in rows[:300])
    assert [normalised(fields)[0] for fields in rows[:300]] == ["deposit"] * 300


def test_money_tx_ids_are_unique_and_increasing() -> None:
    rows = plain_rows(make(transactions=20_000))
    ids = [tx for kind, _, tx, _ in rows if kind in MONEY]
    assert ids == list(range(1, len(ids) + 1))


@pytest.mark.parametrize("chunk_rows", [301, 1 << 20])
def test_references_point_to_earlier_deposits_and_open_disputes(chunk_rows: int) -> None:
    rows = plain_rows(make(clients=200, transactions=50_000, chunk_rows=chunk_rows))
    owner: dict[int, int] = {}
    disputed: set[int] = set()
    tally: Counter[str] = Counter()
    for kind, client, tx, amount in rows:
        if kind in MONEY:
            if kind == "deposit":
                owner[tx] = client
            continue
        assert amount == ""
        # Every reference names a deposit that came earlier in the file.
        assert tx in owner, f"{kind} of tx {tx}, which is no earlier deposit"
        tally[f"{kind} same client"] += owner[tx] == client
        tally[kind] += 1
        if kind == "dispute":
            tally["dispute of undisputed"] += tx not in disputed
            disputed.add(tx)
        else:
            tally[f"{kind} of disputed"] += tx in disputed
            disputed.discard(tx)
    assert tally["dispute"] > 5_000
    assert tally["resolve"] > 1_500
    # Not perfect, by design, but most references are ones the job will accept.
    assert tally["dispute same client"] / tally["dispute"] > 0.98
    assert tally["dispute same client"] < tally["dispute"]  # a few name another client
    assert tally["dispute of undisputed"] / tally["dispute"] > 0.95
    assert tally["resolve of disputed"] / tally["resolve"] > 0.95
    assert tally["resolve same client"] / tally["resolve"] > 0.98


def test_amounts_are_positive_with_at_most_four_decimals() -> None:
    rows = plain_rows(make(transactions=30_000))
    amounts = [amount for kind, _, _, amount in rows if kind in MONEY]
    for amount in amounts:
        assert CANONICAL_AMOUNT_RE.fullmatch(amount), amount
        assert Decimal(amount) > 0
    decimals = Counter(len(a.partition(".")[2]) for a in amounts)
    assert set(decimals) == {0, 1, 2, 3, 4}
    assert any(Decimal(a) < 1 for a in amounts)


def test_some_withdrawals_overdraw() -> None:
    rows = plain_rows(make(transactions=20_000))
    deposits = sorted(Decimal(a) for kind, _, _, a in rows if kind == "deposit")
    withdrawals = [Decimal(a) for kind, _, _, a in rows if kind == "withdrawal"]
    largest_deposit = deposits[-1]
    big = sum(w > largest_deposit for w in withdrawals) / len(withdrawals)
    assert 0.02 < big < 0.2


def test_default_mix_shares() -> None:
    buffer = io.BytesIO()
    stats = generate(buffer, clients=100, transactions=200_100, seed=3)
    assert sum(stats.kinds.values()) == stats.rows == 200_100
    counted = Counter(kind for kind, _, _, _ in plain_rows(buffer.getvalue()))
    assert counted == Counter(stats.kinds) - Counter()
    body = {kind: count - (100 if kind == "deposit" else 0) for kind, count in counted.items()}
    for kind, share in zip(KINDS, DEFAULT_MIX.shares(), strict=True):
        assert body[kind] / 200_000 == pytest.approx(share, abs=0.005)
    assert 40 <= body["chargeback"] <= 170  # 0.05% of 200,000 is 100


def test_mix_option_changes_kinds() -> None:
    rows = plain_rows(make(mix=Mix(withdrawal=0, dispute=0, resolve=0, chargeback=0)))
    assert {kind for kind, *_ in rows} == {"deposit"}


def test_size_limits() -> None:
    make(clients=65_535, transactions=65_535, chunk_rows=1 << 20)
    with pytest.raises(SizeError, match="65535"):
        make(clients=65_536)
    with pytest.raises(SizeError, match=r"1\.\.65535"):
        make(clients=0)
    with pytest.raises(SizeError, match="at least clients"):
        make(clients=10, transactions=9)
    with pytest.raises(SizeError, match="seed"):
        make(seed=-1)


# --- mix parsing -----------------------------------------------------------------------


def test_mix_parse_keeps_unnamed_kinds() -> None:
    mix = Mix.parse("deposit=50, chargeback=1%")
    assert (mix.deposit, mix.withdrawal, mix.chargeback) == (50, 40, 1)
    assert Mix.parse("withdraw=0").withdrawal == 0
    assert Mix.parse("dispute=30", HOSTILE_MIX).chargeback == HOSTILE_MIX.chargeback


@pytest.mark.parametrize("text", ["refund=3", "deposit", "deposit=x", "deposit=-1"])
def test_mix_parse_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        Mix.parse(text)


def test_mix_must_have_some_weight() -> None:
    with pytest.raises(ValueError, match="all be 0"):
        Mix(0, 0, 0, 0, 0)


# --- shapes ----------------------------------------------------------------------------


def test_shapes_change_only_the_text() -> None:
    plain = [normalised(fields) for fields in records(make())]
    messy_data = make(shape=MESSY)
    messy = records(messy_data)
    assert [problem(fields) for fields in messy] == [None] * len(messy)
    assert [normalised(fields) for fields in messy] == plain


def test_crlf() -> None:
    plain = make()
    data = make(shape=Shape(crlf=True))
    assert data == plain.replace(b"\n", b"\r\n")


def test_bom() -> None:
    assert make(shape=Shape(bom=True)) == b"\xef\xbb\xbf" + make()


def test_spaces() -> None:
    data = make(shape=Shape(spaces=True)).decode()
    header, body = data.split("\n", 1)
    assert header != "type,client,tx,amount"
    assert [name.strip(" \t") for name in header.split(",")] == list(render.HEADER)
    assert ", " in body and "\t" in body
    assert sum(line != line.strip(" \t") for line in body.splitlines()) > 100


def test_withdraw_spelling_and_case() -> None:
    data = make(shape=Shape(withdraw_spelling=True))
    kinds = Counter(fields[0] for fields in records(data))
    assert kinds["withdraw"] > 0.3 * (kinds["withdraw"] + kinds["withdrawal"])
    assert kinds["withdrawal"] > 0
    assert kinds["Deposit"] > 0 and kinds["WITHDRAW"] > 0
    assert data.startswith(b"Type,Client,TX,Amount")


def test_quotes() -> None:
    data = make(shape=Shape(quotes=True))
    header, *lines = data.decode().splitlines()
    assert header == '"type","client","tx","amount"'
    # No valid field holds a comma, so a plain split finds the fields.
    quoted = Counter(
        i for line in lines for i, field in enumerate(line.split(",")) if field.startswith('"')
    )
    assert set(quoted) == {0, 1, 2, 3}
    assert quoted[0] > 0.1 * len(lines)
    assert [normalised(fields) for fields in records(data)] == [
        normalised(fields) for fields in records(make())
    ]


def test_ragged_rows() -> None:
    lengths = Counter(
        (normalised(fields)[0], len(fields)) for fields in records(make(shape=Shape(ragged=True)))
    )
    assert lengths["dispute", 3] > 0 and lengths["dispute", 4] > 0
    assert lengths["deposit", 5] > 0 and lengths["deposit", 4] > 0


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.5])
def test_malformed_rate(rate: float) -> None:
    options = {"transactions": 40_040, "shape": Shape(malformed_rate=rate)}
    buffer = io.BytesIO()
    stats = generate(buffer, **{**SMALL, **options})  # type: ignore[arg-type]
    body = records(buffer.getvalue())[SMALL["clients"] :]
    reasons = Counter(problem(fields) for fields in body)
    bad = len(body) - reasons[None]
    assert bad == stats.malformed
    assert reasons["blank"] == stats.blank
    assert bad / len(body) == pytest.approx(rate, rel=0.15)


def test_malformed_rows_come_in_every_kind() -> None:
    data = make(transactions=20_000, shape=Shape(malformed_rate=0.1, spaces=True))
    reasons = Counter(problem(fields) for fields in records(data))
    for reason in (
        "blank",
        "unknown_type",
        "invalid_client",
        "invalid_tx",
        "invalid_amount",
        "malformed_row",
    ):
        assert reasons[reason] > 20, reason
    text = data.decode()
    for garbage in ("70000", ",-1,", "1.00001", "1e3", '"1,000"', "abc"):
        assert garbage in text


# --- hostile ---------------------------------------------------------------------------


def test_hostile_exercises_reject_paths() -> None:
    rows = records(make(transactions=30_000, hostile=True))
    assert all(problem(fields) in (None, "invalid_amount") for fields in rows)
    seen: dict[int, tuple[str, int]] = {}  # tx -> kind, client of its first claim
    tally: Counter[str] = Counter()
    for fields in rows:
        kind, client_text, tx_text, amount = normalised(fields)
        client, tx = int(client_text), int(tx_text)
        if kind in MONEY:
            tally["duplicate"] += tx in seen
            seen.setdefault(tx, (kind, client))
            tally["huge"] += len(amount.partition(".")[0]) >= 15
        elif tx not in seen:
            tally[f"{kind} unknown"] += 1
        else:
            tally[f"{kind} of other client"] += seen[tx][1] != client
            tally[f"{kind} of withdrawal"] += seen[tx][0] == "withdrawal"
        tally[kind] += 1
    assert tally["duplicate"] > 500
    assert tally["huge"] > 10
    assert tally["dispute unknown"] > 100  # forward references
    assert tally["dispute of other client"] > 300
    assert tally["dispute of withdrawal"] > 300
    assert tally["chargeback"] > 400
    assert "922337203685477.5807" in {normalised(fields)[3] for fields in rows}


def test_hostile_mix_is_the_default_for_hostile() -> None:
    buffer = io.BytesIO()
    stats = generate(buffer, **{**SMALL, "transactions": 50_000, "hostile": True})  # type: ignore[arg-type]
    assert stats.kinds["chargeback"] / 50_000 == pytest.approx(HOSTILE_MIX.shares()[4], rel=0.2)


# --- atomic file writing ---------------------------------------------------------------


def test_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    calls = 0
    original = render.Renderer.render

    def failing(self: render.Renderer, rows: object) -> render.Rendered:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("disk on fire")
        return original(self, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(render.Renderer, "render", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        generate(target, **SMALL)  # type: ignore[arg-type]
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


# --- command line ----------------------------------------------------------------------

runner = CliRunner()
CLI_ARGS = ["--clients", "40", "--transactions", "6000", "--seed", "7"]


def test_cli_writes_the_file(tmp_path: Path) -> None:
    target = tmp_path / "tx.csv"
    result = runner.invoke(app, [*CLI_ARGS, "--out", str(target)])
    assert result.exit_code == 0, result.output
    expected = io.BytesIO()
    generate(expected, clients=40, transactions=6_000, seed=7)
    assert target.read_bytes() == expected.getvalue()
    assert "wrote 6,000 rows" in result.stderr
    assert result.stdout == ""
    assert [p.name for p in tmp_path.iterdir()] == ["tx.csv"]


def test_cli_writes_to_stdout_when_no_out() -> None:
    result = runner.invoke(app, [*CLI_ARGS, "--quiet"])
    assert result.exit_code == 0, result.output
    expected = io.BytesIO()
    generate(expected, clients=40, transactions=6_000, seed=7)
    assert result.stdout_bytes == expected.getvalue()
    assert result.stderr == ""


def test_cli_shape_and_mix_options() -> None:
    args = [*CLI_ARGS, "-q", "--crlf", "--spaces", "--withdraw-spelling", "--quotes"]
    args += ["--ragged", "--bom", "--malformed-rate", "0.1", "--mix", "chargeback=2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    expected = io.BytesIO()
    generate(
        expected,
        clients=40,
        transactions=6_000,
        seed=7,
        mix=Mix(chargeback=2),
        shape=Shape(**{**vars(MESSY), "malformed_rate": 0.1}),
    )
    assert result.stdout_bytes == expected.getvalue()


def test_cli_hostile() -> None:
    result = runner.invoke(app, [*CLI_ARGS, "-q", "--hostile"])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == make(hostile=True, chunk_rows=1 << 20)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clients", "70000"], "65535"),
        (["--clients", "0"], "65535"),
        (["--clients", "100", "--transactions", "50"], "at least clients"),
        (["--seed", "-3"], "seed"),
        (["--mix", "refund=4"], "kind=weight"),
        (["--malformed-rate", "1.5"], "malformed-rate"),
    ],
)
def test_cli_rejects_bad_options(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, [*CLI_ARGS, *args, "--out", str(tmp_path / "x.csv")])
    assert result.exit_code != 0
    # Undo the wrapping and the box of rich's error panel before looking for the message.
    assert message in " ".join(re.sub("[│╭╮╰╯─]", " ", result.stderr).split())
    assert not list(tmp_path.iterdir())


def test_cli_reports_unwritable_output(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "x.csv"
    result = runner.invoke(app, [*CLI_ARGS, "--out", str(target)])
    assert result.exit_code == 1
    assert "cannot write" in result.stderr
    assert not (tmp_path / "missing").exists()
