"""The state's table of contents: `manifest.json` (see state/__init__.py).

The manifest names every file of the state with its size and checksum, and every input
applied so far. It is the state: files it does not name are not part of it.

Its own checksum catches damage. With a state key (docs/rules.md §7) it also carries an
HMAC-SHA256 of its content, which catches an edit made to look consistent: a forged
balance file with the manifest's checksums recomputed, or an applied file taken off the
list. Without a key a signed manifest still reads (its signature is not checked).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, StateError, UsageError

# 2: applied files carry `content_sha256`, and the manifest may be signed. Format 1
# (written before) reads as it is.
FORMAT = 2
READABLE_FORMATS = (1, 2)
MANIFEST = "manifest.json"


@dataclass
class AppliedFile:
    """An input file applied to the state.

    `sha256` is the hash of its bytes, `content_sha256` of its content as the rules
    read it (engine.references.InputDigest); entries written by format 1 have only the
    first. An input is the same as an applied one if either hash matches.
    """

    name: str
    sha256: str
    rows: int
    bytes: int
    applied_at: str
    version: int
    content_sha256: str | None = None


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
    # Whether the manifest read carried a signature; not itself written.
    signed: bool = field(default=False, compare=False)

    def to_json(self, key: bytes | None = None) -> str:
        """The manifest as written: its content, signed with `key` if given, and its
        checksum."""
        body = {"format": FORMAT, **asdict(self)}
        del body["signed"]
        if key is not None:
            body["signature"] = _signature(key, body)
        body["checksum"] = _digest(json.dumps(body, sort_keys=True))
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: Path, key: bytes | None = None) -> Manifest:
        """Read a manifest, checking its checksum and, with `key`, its signature."""
        try:
            body = json.loads(text)
            checksum = body.pop("checksum")
            if checksum != _digest(json.dumps(body, sort_keys=True)):
                raise StateError(f"{where} does not match its checksum: damaged or edited")
            signature = body.pop("signature", None)
            if key is not None:
                if signature is None:
                    raise StateError(
                        f"{where} is not signed, but a state key is set: edited, or a state "
                        "never signed (sign it once with `accounts-job state sign`)"
                    )
                if not hmac.compare_digest(str(signature), _signature(key, body)):
                    raise StateError(
                        f"{where} does not match its signature: edited, or signed with another key"
                    )
            if body.pop("format") not in READABLE_FORMATS:
                raise StateError(f"{where} is of a state format this version cannot read")
            body["applied"] = [AppliedFile(**a) for a in body["applied"]]
            return cls(**body, signed=signature is not None)
        except StateError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise StateError(f"{where} is not a readable state manifest: {e}") from None

    def applied_with(self, sha256: str, content_sha256: str) -> AppliedFile | None:
        """The applied file with these bytes or this content, if any."""
        return next(
            (a for a in self.applied if a.sha256 == sha256 or a.content_sha256 == content_sha256),
            None,
        )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _signature(key: bytes, body: dict[str, Any]) -> str:
    """HMAC-SHA256 of the manifest's content (without its checksum and signature)."""
    return hmac.new(key, json.dumps(body, sort_keys=True).encode(), hashlib.sha256).hexdigest()


KEY_ENV = "ACCOUNTS_JOB_STATE_KEY"


def state_key(key: bytes | None = None, key_file: str | Path | None = None) -> bytes | None:
    """The state key: `key` if given, else the content of `key_file`, else the
    environment's ACCOUNTS_JOB_STATE_KEY (as UTF-8), else None (no key).

    A key file's trailing line end is not part of the key, so a key written by
    `openssl rand -hex 32 > FILE` works. An empty key is a UsageError; an unreadable
    key file an InputError.
    """
    if key is None and key_file is not None:
        try:
            key = Path(key_file).read_bytes().rstrip(b"\r\n")
        except OSError as e:
            raise InputError(f"cannot read state key file {key_file}: {e.strerror or e}") from None
        where = f"state key file {key_file}"
    elif key is None:
        text = os.environ.get(KEY_ENV)
        if text is None:
            return None
        key, where = text.encode(), KEY_ENV
    else:
        where = "state_key"
    if not key:
        raise UsageError(f"{where} is empty: a state key needs at least one byte")
    return key


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
