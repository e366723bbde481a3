"""The numeric codes shared by the compiled kernels and the Python side.

Kernels work on small integers; everything a user sees is a name. Keep the two tables
here so that the names of docs/rules.md (§8, reason codes) appear in exactly one place.
"""

from __future__ import annotations

# Row kinds, as the parser writes them. 0 means "no kind": the row was blank or malformed.
NONE = 0
DEPOSIT = 1
WITHDRAWAL = 2
DISPUTE = 3
RESOLVE = 4
CHARGEBACK = 5

KIND_NAMES: dict[int, str] = {
    DEPOSIT: "deposit",
    WITHDRAWAL: "withdrawal",
    DISPUTE: "dispute",
    RESOLVE: "resolve",
    CHARGEBACK: "chargeback",
}

# Row outcomes. APPLIED and BLANK are not rejects; every other code is a reject reason.
# The numbers are not the order of checks: that is docs/rules.md §2.9 and §4.2.
APPLIED = 0
# Malformed rows: rejected by the parser, before the rules run.
MALFORMED_ROW = 1
UNKNOWN_TYPE = 2
INVALID_CLIENT = 3
INVALID_TX = 4
INVALID_AMOUNT = 5
# Rule rejects: the row was well formed, the account aggregate refused the command.
ACCOUNT_LOCKED = 6
DUPLICATE_TX = 7
OVERFLOW = 8
INSUFFICIENT_FUNDS = 9
UNKNOWN_TX = 10
CLIENT_MISMATCH = 11
NOT_DISPUTABLE = 12
ALREADY_DISPUTED = 13
ALREADY_CHARGED_BACK = 14
NOT_DISPUTED = 15
BLANK = 255

REASON_NAMES: dict[int, str] = {
    MALFORMED_ROW: "malformed_row",
    UNKNOWN_TYPE: "unknown_type",
    INVALID_CLIENT: "invalid_client",
    INVALID_TX: "invalid_tx",
    INVALID_AMOUNT: "invalid_amount",
    ACCOUNT_LOCKED: "account_locked",
    DUPLICATE_TX: "duplicate_tx",
    OVERFLOW: "overflow",
    INSUFFICIENT_FUNDS: "insufficient_funds",
    UNKNOWN_TX: "unknown_tx",
    CLIENT_MISMATCH: "client_mismatch",
    NOT_DISPUTABLE: "not_disputable",
    ALREADY_DISPUTED: "already_disputed",
    ALREADY_CHARGED_BACK: "already_charged_back",
    NOT_DISPUTED: "not_disputed",
}

# Id limits (docs/rules.md §2.6, §2.7): a client is a u16, a tx id a u32.
MAX_CLIENT = 65_535
MAX_TX = 4_294_967_295
# Accounts: one slot per possible client.
N_CLIENTS = MAX_CLIENT + 1

# The largest balance, in units of 0.0001: balances are signed 64-bit counts of units.
MAX_UNITS = 2**63 - 1
UNITS_PER_WHOLE = 10_000
SCALE = 4
