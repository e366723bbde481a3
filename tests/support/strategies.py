"""Hypothesis strategies for whole transactions files, and the values they draw from.

The files favour what makes the rules interesting: a handful of clients (0 and 65535
among them) and tx ids, so duplicates, forward and cross-client references, re-disputes
and chargebacks (locked accounts) are common; amounts near the int64 limit; and every
input form docs/rules.md §2 allows, plus garbage.
"""

from __future__ import annotations

from hypothesis import strategies as st

# Values, well formed and not. Repeats weight the draw.
KINDS = ["deposit"] * 5 + ["withdrawal"] * 2 + ["withdraw"] + ["dispute"] * 3
KINDS += ["resolve"] * 2 + ["chargeback"]
BAD_KINDS = ["", "transfer", "deposits", "with draw", "d\u00e9p\u00f4t", "dep\udcffosit"]
CLIENTS = ["1", "2", "0", "65535", "0002"]
BAD_CLIENTS = ["65536", "-1", "+1", "", "x", "1.0", "\udcff"]
TXS = ["1", "2", "3", "4", "5", "0", "63", "64", "1000", "0003"]
BAD_TXS = ["4294967296", "-2", "", "t", "1e3"]
AMOUNTS = ["1", "2.5", "0.0001", ".5", "5.", "1.50000", "10", "3.1415", "100", "0.9999"]
BIG_AMOUNTS = ["922337203685477.5807", "461168601842738.7904", "922337203685477", "1" + "0" * 14]
BAD_AMOUNTS = ["0", "0.0000", "-1", "+1", "1e3", "1.00001", "", ".", "abc", "1,000"]
BAD_AMOUNTS += ["922337203685477.5808", "1 000", "\udcff"]
JUNK = ["", "", " ", "note", "1,2", 'say "hi"', "\udcff", "\t"]
PADS = ["", "", "", " ", "\t", " \t "]
BLANKS = ["", " ", "\t", " \t ", "\r"]


def case_styles():
    return st.sampled_from([str.lower, str.lower, str.upper, str.title, str.swapcase])


@st.composite
def field(draw, value: str) -> str:
    """One field as a partner might write it: padded, quoted or not."""
    quoted = '"' in value or "," in value or draw(st.sampled_from([False, False, False, True]))
    if quoted:
        inner = draw(st.sampled_from(PADS))
        value = '"' + inner + value.replace('"', '""') + inner + '"'
    return draw(st.sampled_from(PADS)) + value + draw(st.sampled_from(PADS))


@st.composite
def header(draw) -> list[str]:
    """The column names, in file order."""
    names = ["type", "client", "tx"]
    if draw(st.integers(1, 12)) > 1:
        names.append("amount")
    names += draw(st.lists(st.sampled_from(["note", "memo", "id"]), max_size=2, unique=True))
    if draw(st.integers(1, 30)) == 1:  # unusable: a required column missing, or one twice
        names = draw(st.sampled_from([names[1:], [*names, "tx"], [*names, "type"]]))
    return draw(st.permutations(names))


def pick(draw, good: list[str], bad: list[str], bad_one_in: int) -> str:
    return draw(st.sampled_from(bad if draw(st.integers(1, bad_one_in)) == 1 else good))


@st.composite
def row(draw, columns: list[str], clients: list[str], txs: list[str]) -> str:
    kind = pick(draw, KINDS, BAD_KINDS, 40)
    values = {
        "type": draw(case_styles())(kind),
        "client": pick(draw, clients, BAD_CLIENTS, 40),
        "tx": pick(draw, txs, BAD_TXS, 40),
    }
    if kind.lower().startswith(("dispute", "resolve", "chargeback")):
        values["amount"] = draw(st.sampled_from(["", "", "", *AMOUNTS[:2], *BAD_AMOUNTS]))
    else:
        values["amount"] = draw(
            st.sampled_from(AMOUNTS * 2 + BIG_AMOUNTS)
            if draw(st.integers(1, 15)) > 1
            else st.sampled_from(BAD_AMOUNTS)
        )
    fields = [
        draw(field(values[name])) if name in values else draw(field(draw(st.sampled_from(JUNK))))
        for name in columns
    ]
    shape = draw(st.sampled_from(["full"] * 16 + ["trim", "trim", "cut", "extra", "junk", "quote"]))
    if shape == "trim":  # drop trailing empty fields
        while fields and not fields[-1].strip(' \t"'):
            fields.pop()
    elif shape == "cut":  # ragged: fewer fields than the header
        fields = fields[: draw(st.integers(0, len(fields)))]
    elif shape == "extra":  # more fields, empty ones
        fields += draw(st.lists(st.sampled_from(["", " ", "\t", '""', '" "']), max_size=2))
    elif shape == "junk":  # more fields, one not empty
        fields += ["", draw(st.sampled_from(["x", "0", '"y"']))][draw(st.integers(0, 1)) :]
    elif shape == "quote":  # an unterminated quote or text after a closing quote
        i = draw(st.integers(0, len(fields) - 1))
        fields[i] = draw(st.sampled_from(['"' + fields[i], '"' + fields[i] + '"x']))
    return ",".join(fields)


@st.composite
def csv_files(draw, max_rows: int = 30) -> bytes:
    """A whole transactions file, as bytes (may hold bytes that are not UTF-8)."""
    columns = draw(header())
    names = [draw(case_styles())(name) for name in columns]
    head = ",".join(draw(field(name)) for name in names)
    lines = [draw(st.sampled_from(BLANKS)) for _ in range(draw(st.sampled_from([0] * 5 + [1, 2])))]
    lines.append(head)
    # A few clients and tx ids per file, so that rows often name the same ones.
    clients = draw(st.lists(st.sampled_from(CLIENTS), min_size=1, max_size=3))
    txs = draw(st.lists(st.sampled_from(TXS), min_size=1, max_size=6))
    for _ in range(draw(st.integers(0, max_rows))):
        if draw(st.integers(1, 12)) == 1:
            lines.append(draw(st.sampled_from(BLANKS)))
        else:
            lines.append(draw(row(columns, clients, txs)))
    eol = draw(st.sampled_from(["\n", "\n", "\r\n", "mixed"]))
    ends = [draw(st.sampled_from(["\n", "\r\n"])) if eol == "mixed" else eol for _ in lines]
    text = "".join(line + end for line, end in zip(lines, ends, strict=True))
    if text and draw(st.integers(1, 10)) == 1:
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + "\x00" + text[at:]  # a NUL byte: its line is not text
    if draw(st.booleans()):
        text = text[: -len(ends[-1])]  # no final line end
    if draw(st.integers(1, 5)) == 1:
        text = "\ufeff" + text
    return text.encode("utf-8", "surrogateescape")
