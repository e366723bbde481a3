"""What a caller can choose: the mix of row kinds and the messy shapes of the text."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

KINDS = ("deposit", "withdrawal", "dispute", "resolve", "chargeback")
"""Row kinds, in the order of their numeric codes (deposit is 0)."""

# Accepted as a key in Mix.parse, as partners spell it in files too.
_KIND_ALIASES = {"withdraw": "withdrawal"}


@dataclass(frozen=True)
class Mix:
    """Relative weights of the row kinds after the opening deposits.

    Weights are percentages by convention but need not sum to 100: they are normalised.
    """

    deposit: float = 40.0
    withdrawal: float = 40.0
    dispute: float = 15.0
    resolve: float = 5.0
    chargeback: float = 0.05

    def __post_init__(self) -> None:
        for kind, weight in asdict(self).items():
            if not (math.isfinite(weight) and weight >= 0):
                raise ValueError(f"mix weight for {kind} must be a number >= 0, got {weight}")
        if sum(self.weights()) <= 0:
            raise ValueError("mix weights must not all be 0")

    def weights(self) -> tuple[float, ...]:
        """The weights in KINDS order, not normalised."""
        return tuple(getattr(self, kind) for kind in KINDS)

    def shares(self) -> tuple[float, ...]:
        """The weights in KINDS order, normalised to sum to 1."""
        weights = self.weights()
        total = sum(weights)
        return tuple(w / total for w in weights)

    @classmethod
    def parse(cls, text: str, base: Mix | None = None) -> Mix:
        """Read `kind=weight` pairs separated by commas, e.g. `deposit=50,chargeback=1`.

        Kinds left out keep their weight from `base` (default: DEFAULT_MIX), so bumping one
        kind takes one pair; write `kind=0` to leave a kind out.
        """
        values = asdict(base or DEFAULT_MIX)
        for item in text.split(","):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            kind = key.strip().lower()
            kind = _KIND_ALIASES.get(kind, kind)
            if not sep or kind not in values:
                raise ValueError(
                    f"bad mix item {item.strip()!r}: expected kind=weight with kind one of "
                    + ", ".join(KINDS)
                )
            try:
                values[kind] = float(value.strip().rstrip("%"))
            except ValueError:
                raise ValueError(f"bad mix weight {value.strip()!r} for {kind}") from None
        return cls(**values)


DEFAULT_MIX = Mix()
"""40% deposits, 40% withdrawals, 15% disputes, 5% resolves, 0.05% chargebacks."""

HOSTILE_MIX = Mix(deposit=35, withdrawal=35, dispute=20, resolve=5, chargeback=2)
"""More disputes and far more chargebacks, so that accounts lock early and often."""


@dataclass(frozen=True)
class Shape:
    """How the text looks, independent of what the rows say.

    With the same seed, the rows' content does not depend on the shape: `crlf` only changes
    the line ends, `malformed_rate` only replaces some rows by garbage, and so on.
    """

    spaces: bool = False
    """Spaces and tabs around fields and header names (`deposit, 1, 1, 1.0`)."""
    withdraw_spelling: bool = False
    """About half the withdrawals spelled `withdraw`; some types and header names in mixed
    or upper case (`Deposit`, `WITHDRAW`, `Type`)."""
    crlf: bool = False
    """CRLF line ends."""
    quotes: bool = False
    """Some fields, and the header names, double-quoted."""
    ragged: bool = False
    """Rows of uneven length, all well-formed: some dispute/resolve/chargeback rows without
    the amount field (`dispute,1,4`), some with an amount, which the job ignores, and some
    rows with an extra empty trailing field (`deposit,1,1,2.0,`)."""
    bom: bool = False
    """A UTF-8 byte-order mark before the header."""
    malformed_rate: float = 0.0
    """Fraction of the rows after the opening deposits replaced by malformed garbage
    (including some blank lines)."""

    def __post_init__(self) -> None:
        if not (0.0 <= self.malformed_rate <= 1.0):
            raise ValueError(f"malformed rate must be within 0..1, got {self.malformed_rate}")


PLAIN = Shape()
"""Clean text: LF line ends, no padding, no quotes, no garbage."""
