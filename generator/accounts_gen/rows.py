"""What the rows say: kind, client, tx id and amount, drawn a chunk at a time.

Everything is vectorised with numpy. The little state a file needs across chunks (the row
count, the next tx id, recent deposits and currently disputed txs) lives in RowMaker, so a
file comes out the same however it is split into chunks of a given size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .options import Mix

DEPOSIT, WITHDRAWAL, DISPUTE, RESOLVE, CHARGEBACK = range(5)

MAX_CLIENTS = 65_535
UNITS_PER_UNIT = 10_000
"""Amounts are held as integer counts of 0.0001."""

# Cap on ordinary amounts (1e9), far from any overflow of a 64-bit balance.
_MAX_UNITS = 10**13

# Disputes pick among the most recent deposits and resolves among the most recent
# disputes: recent enough to look like real traffic, wide enough that two rows rarely
# want the same target.
_WINDOW = 1 << 17
# Rows whose pick was already taken draw again this many times; few remain after that,
# and those become realistic rejects in the job.
_CLAIM_ROUNDS = 4

# Number of decimal places of an amount: most have 0 or 2, some the full 4.
_PLACES_CDF = np.cumsum([0.30, 0.20, 0.35, 0.05, 0.10])

_OPENING_MEDIAN, _OPENING_SIGMA = 500.0, 1.0
_DEPOSIT_MEDIAN, _DEPOSIT_SIGMA = 100.0, 1.5
# Ordinary withdrawals are smaller than deposits, so balances tend to grow and most
# succeed; a share asks for far more than any likely balance.
_WITHDRAWAL_MEDIAN, _WITHDRAWAL_SIGMA = 50.0, 1.2
_OVERDRAW_SHARE, _OVERDRAW_MEDIAN, _OVERDRAW_SIGMA = 0.08, 1e6, 1.0

# A small share of disputes name another client, as real partners' files do.
_MISMATCH_SHARE = 0.005

# Hostile mode: shares of the rows it bends towards the job's reject paths.
_HOSTILE_REUSE = 0.05  # deposits/withdrawals reusing an earlier tx id
_HOSTILE_HUGE = 0.002  # deposits/withdrawals with a huge amount
_HOSTILE_MISMATCH = 0.10  # disputes naming another client
_HOSTILE_FORWARD = 0.05  # disputes of a tx id that only comes later
_HOSTILE_OF_WITHDRAWAL = 0.10  # disputes of a withdrawal
_HOSTILE_STRAY = 0.10  # resolves/chargebacks of a deposit that may not be disputed

HUGE_AMOUNTS = (
    "922337203685477.5807",  # the largest balance there is: overflows any non-empty account
    "500000000000000",  # fits once, overflows the second time
    "99999999999999999",  # cannot be held at all
    "922337203685477.5808",  # one unit past the largest
)


@dataclass(frozen=True)
class Rows:
    """One chunk of rows, as parallel arrays."""

    kind: np.ndarray
    """uint8 kind codes (DEPOSIT, ...)."""
    client: np.ndarray
    """int64 client ids."""
    tx: np.ndarray
    """int64 tx ids."""
    units: np.ndarray
    """int64 amounts in units of 0.0001; 0 on rows that carry no amount."""
    huge: np.ndarray
    """uint8: 0 for an ordinary amount, else 1 + an index into HUGE_AMOUNTS."""
    opening: int
    """This many leading rows are opening deposits, one per client."""

    def __len__(self) -> int:
        return len(self.kind)


class _Pool:
    """Recent candidates for a reference (client and tx), each possibly already taken."""

    def __init__(self) -> None:
        self.client = np.empty(0, np.int64)
        self.tx = np.empty(0, np.int64)
        self.taken = np.empty(0, bool)

    def extend(self, client: np.ndarray, tx: np.ndarray) -> int:
        """Append candidates; return how many there were before."""
        base = len(self.tx)
        self.client = np.concatenate([self.client, client])
        self.tx = np.concatenate([self.tx, tx])
        self.taken = np.concatenate([self.taken, np.zeros(len(tx), bool)])
        return base

    def trim(self) -> None:
        """Keep only what a later chunk can still reach."""
        if len(self.tx) > _WINDOW:
            self.client = self.client[-_WINDOW:].copy()
            self.tx = self.tx[-_WINDOW:].copy()
            self.taken = self.taken[-_WINDOW:].copy()


def _claim(
    rng: np.random.Generator, end: np.ndarray, taken: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each request, pick a pool index in [end - _WINDOW, end), and take it.

    `end` (exclusive) is, per requesting row, how many candidates came before that row, so
    a row only ever picks something earlier in the file. A pick that is already taken, or
    that an earlier request in the same round also picked, is drawn again, a few times.
    Returns the picks and whether each took a free candidate; `taken` is updated in place.
    """
    start = np.maximum(end - _WINDOW, 0)
    pick = rng.integers(start, end)
    won = np.zeros(len(end), bool)
    pending = np.arange(len(end))
    for _ in range(_CLAIM_ROUNDS):
        wanted = pick[pending]
        first = np.zeros(len(pending), bool)
        first[np.unique(wanted, return_index=True)[1]] = True
        ok = first & ~taken[wanted]
        taken[wanted[ok]] = True
        won[pending[ok]] = True
        pending = pending[~ok]
        if not len(pending):
            break
        pick[pending] = rng.integers(start[pending], end[pending])
    return pick, won


def _amounts(rng: np.random.Generator, n: int, median: float, sigma: float) -> np.ndarray:
    """`n` positive amounts in units, log-normal around `median`, with 0 to 4 decimals."""
    places = np.minimum(np.searchsorted(_PLACES_CDF, rng.random(n), side="right"), 4)
    step = 10 ** (4 - places)
    value = rng.lognormal(np.log(median), sigma, n) * UNITS_PER_UNIT
    units = np.maximum(np.rint(value / step), 1).astype(np.int64) * step
    return np.minimum(units, _MAX_UNITS)


def _exclusive_count(mask: np.ndarray) -> np.ndarray:
    """For each position, how many True values come strictly before it."""
    counts = np.cumsum(mask, dtype=np.int64)
    return counts - mask


class RowMaker:
    """Draws the rows of one file, chunk after chunk.

    The first `clients` rows are one deposit per client, client i with tx i. Then kinds
    follow the mix: deposits and withdrawals of uniformly chosen clients with fresh,
    increasing tx ids; disputes of earlier deposits, carrying that deposit's client and tx;
    resolves and chargebacks of currently disputed txs.
    """

    def __init__(self, clients: int, mix: Mix, rng: np.random.Generator, hostile: bool) -> None:
        if not 1 <= clients <= MAX_CLIENTS:
            raise ValueError(f"clients must be within 1..{MAX_CLIENTS}, got {clients}")
        self._clients = clients
        self._cdf = np.cumsum(mix.shares())
        self._cdf[-1] = 1.0
        self._rng = rng
        self._hostile = hostile
        self._row = 0
        self._next_tx = 1
        self._deposits = _Pool()
        self._disputes = _Pool()
        self._last_withdrawal: tuple[int, int] | None = None

    def take(self, n: int) -> Rows:
        """Draw the next `n` rows."""
        rng = self._rng
        opening = int(np.clip(self._clients - self._row, 0, n))
        kind = np.empty(n, np.uint8)
        kind[:opening] = DEPOSIT
        drawn = np.searchsorted(self._cdf, rng.random(n - opening), side="right")
        kind[opening:] = np.minimum(drawn, CHARGEBACK)

        money = kind <= WITHDRAWAL
        # The tx id the next deposit or withdrawal would take, at each row.
        next_tx = self._next_tx + _exclusive_count(money)
        tx = np.where(money, next_tx, 0)
        self._next_tx += int(money.sum())

        client = np.zeros(n, np.int64)
        client[:opening] = np.arange(self._row + 1, self._row + opening + 1)
        body_money = money.copy()
        body_money[:opening] = False
        client[body_money] = rng.integers(1, self._clients + 1, int(body_money.sum()))

        units = np.zeros(n, np.int64)
        units[:opening] = _amounts(rng, opening, _OPENING_MEDIAN, _OPENING_SIGMA)
        deposits = body_money & (kind == DEPOSIT)
        units[deposits] = _amounts(rng, int(deposits.sum()), _DEPOSIT_MEDIAN, _DEPOSIT_SIGMA)
        withdrawals = kind == WITHDRAWAL
        units[withdrawals] = self._withdrawal_amounts(int(withdrawals.sum()))

        huge = np.zeros(n, np.uint8)
        owns_tx = money.copy()  # rows that hold a tx id no other row has
        if self._hostile:
            reuse = body_money & (rng.random(n) < _HOSTILE_REUSE) & (tx > 1)
            tx[reuse] = rng.integers(1, tx[reuse])
            owns_tx &= ~reuse
            big = body_money & (rng.random(n) < _HOSTILE_HUGE)
            huge[big] = rng.integers(1, len(HUGE_AMOUNTS) + 1, int(big.sum()))

        deposit = owns_tx & (kind == DEPOSIT)
        base = self._deposits.extend(client[deposit], tx[deposit])
        deposits_before = base + _exclusive_count(deposit)  # in deposit-pool positions
        opened = self._disputes_of_deposits(kind, client, tx, next_tx, owns_tx, deposits_before)
        self._closes_of_disputes(kind, client, tx, opened, deposits_before)

        self._deposits.trim()
        self._disputes.trim()
        self._row += n
        return Rows(kind=kind, client=client, tx=tx, units=units, huge=huge, opening=opening)

    def _withdrawal_amounts(self, n: int) -> np.ndarray:
        rng = self._rng
        overdraw = rng.random(n) < _OVERDRAW_SHARE
        ordinary = _amounts(rng, n, _WITHDRAWAL_MEDIAN, _WITHDRAWAL_SIGMA)
        large = _amounts(rng, n, _OVERDRAW_MEDIAN, _OVERDRAW_SIGMA)
        return np.where(overdraw, large, ordinary)

    def _disputes_of_deposits(
        self,
        kind: np.ndarray,
        client: np.ndarray,
        tx: np.ndarray,
        next_tx: np.ndarray,
        owns_tx: np.ndarray,
        deposits_before: np.ndarray,
    ) -> np.ndarray:
        """Point dispute rows at earlier deposits; return the rows that open a dispute."""
        rng = self._rng
        rows = np.flatnonzero(kind == DISPUTE)
        pick, won = _claim(rng, deposits_before[rows], self._deposits.taken)
        client[rows] = self._deposits.client[pick]
        tx[rows] = self._deposits.tx[pick]

        draw = rng.random(len(rows))
        mismatch = draw < (_HOSTILE_MISMATCH if self._hostile else _MISMATCH_SHARE)
        client[rows[mismatch]] = rng.integers(1, self._clients + 1, int(mismatch.sum()))
        spoiled = mismatch
        if self._hostile:
            edge = _HOSTILE_MISMATCH + _HOSTILE_FORWARD
            forward = (draw >= _HOSTILE_MISMATCH) & (draw < edge)
            ahead = rng.integers(0, 1000, int(forward.sum()))
            tx[rows[forward]] = next_tx[rows[forward]] + ahead
            of_withdrawal = (draw >= edge) & (draw < edge + _HOSTILE_OF_WITHDRAWAL)
            of_withdrawal[of_withdrawal] = self._point_at_withdrawals(
                kind, client, tx, owns_tx, rows[of_withdrawal]
            )
            spoiled = spoiled | forward | of_withdrawal
        # A deposit whose dispute went astray stays free for a later one.
        self._deposits.taken[pick[won & spoiled]] = False
        return rows[won & ~spoiled]

    def _point_at_withdrawals(
        self,
        kind: np.ndarray,
        client: np.ndarray,
        tx: np.ndarray,
        owns_tx: np.ndarray,
        rows: np.ndarray,
    ) -> np.ndarray:
        """Point `rows` at the latest earlier withdrawal; return where there was one."""
        withdrawal = owns_tx & (kind == WITHDRAWAL)
        latest = np.maximum.accumulate(np.where(withdrawal, np.arange(len(kind)), -1))[rows]
        found = latest >= 0
        client[rows[found]] = client[latest[found]]
        tx[rows[found]] = tx[latest[found]]
        if self._last_withdrawal is not None:
            client[rows[~found]], tx[rows[~found]] = self._last_withdrawal
            found[:] = True
        positions = np.flatnonzero(withdrawal)
        if len(positions):
            last = positions[-1]
            self._last_withdrawal = (int(client[last]), int(tx[last]))
        return found

    def _closes_of_disputes(
        self,
        kind: np.ndarray,
        client: np.ndarray,
        tx: np.ndarray,
        opened: np.ndarray,
        deposits_before: np.ndarray,
    ) -> None:
        """Point resolve and chargeback rows at currently disputed txs."""
        rng = self._rng
        base = self._disputes.extend(client[opened], tx[opened])
        is_open = np.zeros(len(kind), bool)
        is_open[opened] = True
        rows = np.flatnonzero(kind >= RESOLVE)
        end = (base + _exclusive_count(is_open))[rows]
        # Before any dispute is open there is nothing to close; hostile mode also sends
        # some elsewhere. Those name an earlier deposit, most likely not disputed.
        stray = end == 0
        if self._hostile:
            stray |= rng.random(len(rows)) < _HOSTILE_STRAY
        pick, _ = _claim(rng, end[~stray], self._disputes.taken)
        client[rows[~stray]] = self._disputes.client[pick]
        tx[rows[~stray]] = self._disputes.tx[pick]

        stray_rows = rows[stray]
        deposit_end = deposits_before[stray_rows]
        deposit = rng.integers(np.maximum(deposit_end - _WINDOW, 0), deposit_end)
        client[stray_rows] = self._deposits.client[deposit]
        tx[stray_rows] = self._deposits.tx[deposit]
