"""The state's table of contents: `manifest.json` (see state/__init__.py).

The manifest names every file of the state with its size and checksum, and every input
applied so far. It is the state: files it does not name are not part of it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import StateError

FORMAT = 1
MANIFEST = "manifest.json"


@dataclass
class AppliedFile:
    """An input file applied to the state."""

    name: str
    sha256: str
    rows: int
    bytes: int
    applied_at: str
    version: int


@dataclass
class Manifest:
    """The state's table of contents. `files`: name -> {"bytes", "sha256"[, "footer"]}."""

    version: int = 0
    balances: str | None = None
    claimed: str | None = None
    ledgers: list[str] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    applied: list[AppliedFile] = field(default_factory=list)
    # accounts, locked accounts, claimed tx ids, ledger rows: for `state show`
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        body = {"format": FORMAT, **asdict(self)}
        body["checksum"] = _digest(json.dumps(body, sort_keys=True))
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: Path) -> Manifest:
        try:
            body = json.loads(text)
            checksum = body.pop("checksum")
            if checksum != _digest(json.dumps(body, sort_keys=True)):
                raise StateError(f"{where} does not match its checksum: damaged or edited")
            if body.pop("format") != FORMAT:
                raise StateError(f"{where} is of a state format this version cannot read")
            body["applied"] = [AppliedFile(**a) for a in body["applied"]]
            return cls(**body)
        except StateError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise StateError(f"{where} is not a readable state manifest: {e}") from None

    def applied_with(self, sha256: str) -> AppliedFile | None:
        return next((a for a in self.applied if a.sha256 == sha256), None)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
