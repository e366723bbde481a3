"""Every input form docs/rules.md §2 accepts or refuses: tolerant in form, strict in content."""

from __future__ import annotations

import pytest
from accounts_job import JobError, process
from accounts_job.errors import HeaderError, InputError
from support.helpers import D, csv_text, run_csv, zero

MAX = "922337203685477.5807"
SIMPLE = ["deposit,1,1,10", "withdrawal,1,2,2.5", "deposit,2,3,1", "bogus,1,4,1"]


def acct(available: str, held: str = "0", locked: bool = False):
    return (D(available), D(held), D(available) + D(held), locked)


SIMPLE_ACCOUNTS = {1: acct("7.5"), 2: acct("1")}


def lines_text(lines: list[str], end: str = "\n") -> str:
    return "".join(line + end for line in lines)


# Encoding and line ends


def test_plain_file(tmp_path):
    run = run_csv(tmp_path, csv_text(*SIMPLE))
    assert run.accounts == SIMPLE_ACCOUNTS
    assert run.rejects == [(5, "unknown_type")]


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_byte_order_mark(tmp_path, end):
    run = run_csv(tmp_path, "\ufeff" + lines_text(["type,client,tx,amount", *SIMPLE], end))
    assert run.accounts == SIMPLE_ACCOUNTS
    assert run.rejects == [(5, "unknown_type")]


def test_crlf_line_ends(tmp_path):
    run = run_csv(tmp_path, lines_text(["type,client,tx,amount", *SIMPLE], "\r\n"))
    assert run.accounts == SIMPLE_ACCOUNTS
    assert run.rejects == [(5, "unknown_type")]


def test_crlf_after_a_quoted_last_field(tmp_path):
    text = 'type,client,tx,"amount"\r\ndeposit,1,1,"5"\r\ndeposit,1,2," 1.5 "\r\n'
    assert run_csv(tmp_path, text).accounts == {1: acct("6.5")}


def test_mixed_line_ends(tmp_path):
    text = "type,client,tx,amount\r\ndeposit,1,1,10\nwithdrawal,1,2,2.5\r\ndeposit,2,3,1\n"
    assert run_csv(tmp_path, text).accounts == SIMPLE_ACCOUNTS


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_last_line_without_line_end(tmp_path, end):
    text = lines_text(["type,client,tx,amount", *SIMPLE, "deposit,3,5,4"], end)
    run = run_csv(tmp_path, text[: -len(end)])
    assert run.accounts == {**SIMPLE_ACCOUNTS, 3: acct("4")}
    assert run.summary.rows_read == 5
    # ... and a rejected last line keeps its number.
    run = run_csv(tmp_path, lines_text(["type,client,tx,amount", *SIMPLE], end)[: -len(end)])
    assert run.rejects == [(5, "unknown_type")]


def test_blank_lines_are_counted_and_keep_line_numbers_physical(tmp_path):
    text = "type,client,tx,amount\n\ndeposit,1,1,5\n   \n\t\n \t \r\nwithdrawal,1,2,x\n\n"
    run = run_csv(tmp_path, text)
    assert run.rejects == [(7, "invalid_amount")]
    assert run.accounts == {1: acct("5")}
    s = run.summary
    assert (s.rows_read, s.blank_lines, s.applied_total, s.rejected_total) == (7, 5, 1, 1)


def test_blank_lines_before_the_header(tmp_path):
    # The header is the first non-blank line; the lines before it are blank lines.
    text = "\n  \n\t\r\ntype,client,tx,amount\ndeposit,1,1,5\nfoo,1,2,3\n"
    run = run_csv(tmp_path, text)
    assert run.accounts == {1: acct("5")}
    assert run.rejects == [(6, "unknown_type")]
    assert (run.summary.rows_read, run.summary.blank_lines) == (5, 3)


def test_byte_order_mark_then_blank_lines_before_the_header(tmp_path):
    run = run_csv(tmp_path, "\ufeff\r\n\r\ntype,client,tx,amount\r\ndeposit,1,1,5\r\n")
    assert run.accounts == {1: acct("5")}
    assert (run.summary.rows_read, run.summary.blank_lines) == (3, 2)


# The header


@pytest.mark.parametrize(
    "header",
    [
        " TYPE , Client,tx ,AMOUNT",
        "Type\t,\tCLIENT,\ttx\t,\tamount\t",
        '"type","client","tx","amount"',
        ' "Type" ,"client" , " tx ",amount',
        'type,\t"client",tx,amount',
    ],
)
def test_header_names_are_trimmed_case_insensitive_and_may_be_quoted(tmp_path, header):
    run = run_csv(tmp_path, csv_text(*SIMPLE, header=header))
    assert run.accounts == SIMPLE_ACCOUNTS
    assert run.rejects == [(5, "unknown_type")]


@pytest.mark.parametrize("end", ["\r \n", "\t\r\n", " \r\r\n"])
def test_header_line_end_drops_trailing_crs_and_blanks_like_a_row(tmp_path, end):
    """docs/rules.md §2.1: CRs, spaces and tabs at a line's end are dropped, the header's
    too. (Before the fix, `amount\r ` was read as an ignored column `amount\r`, and every
    deposit became invalid_amount.)"""
    run = run_csv(tmp_path, "type,client,tx,amount" + end + lines_text(SIMPLE))
    assert run.accounts == SIMPLE_ACCOUNTS
    assert run.rejects == [(5, "unknown_type")]


def test_header_columns_in_any_order(tmp_path):
    text = csv_text(
        "10,1,1,deposit", "2.5,2,1,withdrawal", "3,7,2,deposit", header="amount,tx,client,type"
    )
    run = run_csv(tmp_path, text)
    assert run.accounts == {1: acct("7.5"), 2: acct("3")}


def test_other_columns_are_ignored(tmp_path):
    header = "id,type,note,client,tx,amount,memo"
    text = csv_text(
        "a1,deposit,hello world,1,1,5,x",
        'a2,deposit,"a, b, ""c""",1,2,5,',
        "a3,withdrawal,-1e9,1,3,2,0",
        ",deposit,,2,4,1,",
        header=header,
    )
    run = run_csv(tmp_path, text)
    assert run.rejects == []
    assert run.accounts == {1: acct("8"), 2: acct("1")}


def test_amount_column_may_be_absent(tmp_path):
    text = csv_text(
        "deposit,1,1",  # no amount: invalid_amount
        "deposit,1,2,",  # an empty extra field is fine, the amount still missing
        "deposit,1,3,5",  # a non-empty field past the header: malformed_row
        "dispute,1,1",  # tx 1 was never accepted
        "withdrawal,2,4",
        header="type,client,tx",
    )
    run = run_csv(tmp_path, text)
    assert run.rejects == [
        (2, "invalid_amount"),
        (3, "invalid_amount"),
        (4, "malformed_row"),
        (5, "unknown_tx"),
        (6, "invalid_amount"),
    ]
    assert run.accounts == {1: zero()}


# Ragged rows


def test_short_rows_have_empty_trailing_fields(tmp_path):
    text = csv_text(
        "deposit,1,1,5",
        "dispute,1,1",
        "resolve,1,1,",
        "deposit,1,2",
        "deposit,1",
        "deposit",
    )
    run = run_csv(tmp_path, text)
    assert run.rejects == [(5, "invalid_amount"), (6, "invalid_tx"), (7, "invalid_client")]
    assert run.accounts == {1: acct("5")}


def test_short_rows_with_extra_header_columns(tmp_path):
    text = csv_text("deposit,1,1,5", "dispute,1,1", header="type,client,tx,amount,note,memo")
    assert run_csv(tmp_path, text).accounts == {1: acct("0", "5")}


@pytest.mark.parametrize(
    "row",
    ["deposit,1,1,2.0,", "deposit,1,1,2.0, ,\t,", 'deposit,1,1,2.0,""', 'deposit,1,1,2.0," "'],
)
def test_extra_empty_fields_are_fine(tmp_path, row):
    run = run_csv(tmp_path, csv_text(row))
    assert run.rejects == []
    assert run.accounts == {1: acct("2")}


@pytest.mark.parametrize(
    "row",
    [
        "deposit,1,1,2.0,x",
        "deposit,1,1,2.0,,0",
        'deposit,1,1,2.0,"x"',
        "deposit,1,1,1,000",  # a thousands separator, unquoted
        "dispute,1,1,,x",
        "foo,x,y,z,extra",  # malformed_row comes before the other checks
    ],
)
def test_extra_non_empty_field_is_malformed(tmp_path, row):
    run = run_csv(tmp_path, csv_text(row))
    assert run.rejects == [(2, "malformed_row")]
    assert run.accounts == {}


# Types


def test_types_are_case_insensitive_and_withdraw_is_withdrawal(tmp_path):
    text = csv_text(
        "DePoSiT,1,1,10",
        "WITHDRAW,1,2,1",
        "Withdrawal,1,3,1",
        "withdraw,1,4,1",
        "DISPUTE,1,1",
        "Resolve,1,1",
        "dIsPuTe,1,1",
        "CHARGEBACK,1,1",
    )
    run = run_csv(tmp_path, text)
    assert run.rejects == []
    assert run.accounts == {1: acct("-3", "0", locked=True)}
    assert run.summary.applied == {
        "deposit": 1,
        "withdrawal": 3,
        "dispute": 2,
        "resolve": 1,
        "chargeback": 1,
    }


@pytest.mark.parametrize(
    "kind",
    ["deposits", "depo sit", "transfer", "", "withdrawals", "dispute!", "d\u00e9posit", "credit"],
)
def test_unknown_type(tmp_path, kind):
    run = run_csv(tmp_path, csv_text(f"{kind},1,1,5", "deposit,2,1,5"))
    assert run.rejects == [(2, "unknown_type")]
    assert run.accounts == {2: acct("5")}  # no account for client 1, tx 1 not claimed


# Quotes and trimming


@pytest.mark.parametrize(
    "row",
    [
        '"deposit","1","1","5.0"',
        '" deposit ",\t" 1 " , "1"\t,"\t5.0 "',
        'deposit,1,1,"5"',
        " deposit\t,\t1 ,  1\t,\t 5 \t",
        "\tdeposit\t,\t1\t,\t1\t,\t5\t",
    ],
)
def test_quoted_and_padded_fields(tmp_path, row):
    run = run_csv(tmp_path, csv_text(row, "dispute , 1 , 1 ,"))
    assert run.rejects == []
    assert run.accounts == {1: acct("0", "5")}


@pytest.mark.parametrize(
    "row",
    [
        'deposit,1,1,"5',  # unterminated
        '"deposit,1,1,5',
        'deposit,1,"1"x,5',  # text after the closing quote
        '"deposit" x,1,1,5',
        'deposit,1,1,5,"',
    ],
)
def test_quote_errors_are_malformed(tmp_path, row):
    run = run_csv(tmp_path, csv_text(row, "deposit,1,1,1"))
    assert run.rejects == [(2, "malformed_row")]
    assert run.accounts == {1: acct("1")}


def test_quoted_comma_and_escaped_quote_in_an_ignored_column(tmp_path):
    text = csv_text('deposit,1,1,5,"say ""hi"", then, go"', header="type,client,tx,amount,note")
    run = run_csv(tmp_path, text)
    assert run.rejects == []
    assert run.accounts == {1: acct("5")}


# Amounts


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", "12"),
        ("12.5", "12.5"),
        ("0.0001", "0.0001"),
        (".5", "0.5"),
        ("5.", "5"),
        ("1.50000", "1.5"),
        ("1.0000000000", "1"),
        ("007.2500", "7.25"),
        ('"3.25"', "3.25"),
        (MAX, MAX),
    ],
)
def test_valid_amounts(tmp_path, text, value):
    run = run_csv(tmp_path, csv_text(f"deposit,1,1,{text}", f"withdrawal,1,2,{text}"))
    assert run.rejects == []
    assert run.accounts == {1: zero()}
    run = run_csv(tmp_path, csv_text(f"deposit,1,1,{text}"))
    assert run.accounts == {1: acct(value)}


INVALID_AMOUNTS = [
    "1.00001",
    "0.00005",
    "-1",
    "-0.5",
    "+1",
    "1e3",
    "1E3",
    '"1,000"',
    "1 000",
    "0",
    "00",
    "0.0000",
    ".",
    "",
    '""',
    "abc",
    "1.2.3",
    "0x10",
    "$5",
    "5-",
    "NaN",
    "inf",
    "\u0661\u0662",  # Arabic-Indic digits
    "\uff11",  # a fullwidth digit
    "922337203685477.5808",
    "922337203685478",
    "99999999999999999999",
    "1" + "0" * 40,
]


@pytest.mark.parametrize("text", INVALID_AMOUNTS)
def test_invalid_amounts(tmp_path, text):
    run = run_csv(
        tmp_path, csv_text("deposit,1,1,10", f"deposit,1,2,{text}", f"withdrawal,1,3,{text}")
    )
    assert run.rejects == [(3, "invalid_amount"), (4, "invalid_amount")]
    assert run.accounts == {1: acct("10")}


def test_invalid_amount_does_not_create_an_account(tmp_path):
    run = run_csv(tmp_path, csv_text("deposit,1,1,-5", "withdrawal,2,2,0"))
    assert run.accounts == {}


@pytest.mark.parametrize("amount", ["", "abc", "-5", "1e3", "999", '"x,y"', "0", "1.00001"])
def test_amount_of_references_is_ignored(tmp_path, amount):
    text = csv_text(
        "deposit,1,1,5",
        f"dispute,1,1,{amount}",
        f"resolve,1,1,{amount}",
        f"dispute,1,1,{amount}",
        f"chargeback,1,1,{amount}",
    )
    run = run_csv(tmp_path, text)
    assert run.rejects == []
    assert run.accounts == {1: acct("0", "0", locked=True)}


# Client and tx ids


@pytest.mark.parametrize(
    ("text", "client"), [("0", 0), ("65535", 65535), ("00001", 1), ('"42"', 42), ("007", 7)]
)
def test_valid_clients(tmp_path, text, client):
    run = run_csv(tmp_path, csv_text(f"deposit,{text},1,5"))
    assert run.accounts == {client: acct("5")}


@pytest.mark.parametrize(
    "text", ["65536", "-1", "+1", "1.0", "", "x", "1e2", "99999999999999999999", "1 2", "\uff11"]
)
def test_invalid_clients(tmp_path, text):
    run = run_csv(tmp_path, csv_text(f"deposit,{text},1,5", "dispute,7,1"))
    assert run.rejects == [(2, "invalid_client"), (3, "unknown_tx")]
    assert run.accounts == {7: zero()}


def test_largest_tx_id(tmp_path):
    text = csv_text("deposit,1,4294967295,5", "dispute,1,4294967295", "deposit,2,004294967295,1")
    run = run_csv(tmp_path, text)
    assert run.rejects == [(4, "duplicate_tx")]
    assert run.accounts == {1: acct("0", "5"), 2: zero()}


def test_tx_id_zero_and_leading_zeros(tmp_path):
    run = run_csv(tmp_path, csv_text("deposit,1,0,5", "dispute,1,000", "deposit,1,00,1"))
    assert run.rejects == [(4, "duplicate_tx")]
    assert run.accounts == {1: acct("0", "5")}


@pytest.mark.parametrize("text", ["4294967296", "-1", "+1", "", "1.0", "t", "99999999999999999999"])
def test_invalid_tx_ids(tmp_path, text):
    run = run_csv(tmp_path, csv_text(f"deposit,1,{text},5", f"dispute,1,{text}"))
    assert run.rejects == [(2, "invalid_tx"), (3, "invalid_tx")]
    assert run.accounts == {}


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("foo,x,y,z", "unknown_type"),
        ("deposit,x,y,z", "invalid_client"),
        ("deposit,1,y,z", "invalid_tx"),
        ("deposit,1,1,z", "invalid_amount"),
        ("dispute,x,y,z", "invalid_client"),
        ("dispute,1,y,z", "invalid_tx"),
        ('foo,x,"y', "malformed_row"),
        ("foo,x,y,z,w", "malformed_row"),
    ],
)
def test_order_of_malformed_reasons(tmp_path, row, reason):
    assert run_csv(tmp_path, csv_text(row)).rejects == [(2, reason)]


# Bytes that are not text


def test_invalid_utf8_in_a_field_is_rejected_not_fatal(tmp_path):
    data = (
        b"type,client,tx,amount,note\n"
        b"deposit,1,1,\xff5\n"
        b"dep\xffosit,1,2,5\n"
        b"deposit,\xff1,3,5\n"
        b"deposit,1,\xc3,5\n"
        b"deposit,1,5,5,caf\xe9\n"
        b"dispute,1,5,\xff\n"
        b"deposit,2,6,1,caf\xc3\xa9\n"
        b"deposit,2,7,1\xff,\n"
    )
    run = run_csv(tmp_path, data)
    assert run.rejects == [
        (2, "invalid_amount"),
        (3, "unknown_type"),
        (4, "invalid_client"),
        (5, "invalid_tx"),
        (9, "invalid_amount"),
    ]
    assert run.accounts == {1: acct("0", "5"), 2: acct("1")}


def test_row_with_a_nul_byte_is_not_applied(tmp_path):
    # A NUL byte is not text: the row is malformed, wherever the NUL stands.
    run = run_csv(
        tmp_path,
        b"type,client,tx,amount\ndeposit,1,1,5\x00\ndeposit,2,2,5\x00x\n"
        b"deposit,3,3,5\ndispute,3,3\x00\n\x00\n",
    )
    assert run.rejects == [
        (2, "malformed_row"),
        (3, "malformed_row"),
        (5, "malformed_row"),
        (6, "malformed_row"),
    ]
    assert run.accounts == {3: acct("5")}


# Empty inputs


@pytest.mark.parametrize(
    "text", ["type,client,tx,amount", "type,client,tx,amount\n", "\ufefftype,client,tx\r\n\r\n"]
)
def test_header_only_gives_no_accounts(tmp_path, text):
    run = run_csv(tmp_path, text)
    assert run.accounts == {}
    assert run.rejects == []
    assert run.summary.rows_read == run.summary.blank_lines


# Fatal errors


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\ufeff",
        "\n\n",
        " \t\r\n\r\n  \n",
        "type,client,amount\ndeposit,1,5\n",
        "type,tx,amount\n",
        "client,tx,amount\n",
        "deposit,1,1,5\n",
        "typ,client,tx,amount\n",
        "type client tx amount\n",
        "type;client;tx;amount\n",
        "type,client,tx,amount,TX\n",
        "type,client,tx,amount, Amount \n",
        "Type,TYPE,client,tx\n",
    ],
)
def test_unusable_header_is_fatal(tmp_path, text):
    path = tmp_path / "in.csv"
    path.write_text(text)
    with pytest.raises(HeaderError):
        process(path)


def test_missing_input_is_fatal(tmp_path):
    with pytest.raises(InputError):
        process(tmp_path / "nope.csv")


def test_directory_input_is_fatal(tmp_path):
    with pytest.raises(InputError):
        process(tmp_path)


def test_fatal_errors_are_job_errors():
    assert issubclass(HeaderError, JobError)
    assert issubclass(InputError, JobError)
