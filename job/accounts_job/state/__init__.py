"""Nightly runs: what the rules remember, kept on disk from one run to the next.

docs/rules.md §7 says what a nightly run promises; this package keeps it.

A state folder is made on purpose (`StateDir.init`, `accounts-job state init`): a run
never starts one. It holds, in open formats:

- `manifest.json`: the state's version, its files with their sizes and checksums, and
  every input file applied so far (name, the hashes of its bytes and of its content,
  rows, when); with a state key, an HMAC-SHA256 of all that (state/manifest.py);
- `balances-<version>.parquet`: one row per account (client, available, held, locked);
- `claimed-<version>.parquet`: the claimed tx ids, as the non-zero 64-bit words of a
  bitmap (word index, bits);
- `ledger-<version>.parquet`, one per run: the deposits and withdrawals that run
  accepted (tx, client, amount_units (int64 units of 0.0001), state: deposited,
  disputed, resolved, charged_back, withdrawn), in file order, then the earlier ones
  whose dispute state it changed, sorted by tx. A tx's latest row, over the runs in
  order, is its current state.

A run reads the balances and the claimed ids whole (they are bounded: 65,536 accounts,
and one bit per tx id), and from the ledgers only what the night's rows reference: the
tx ids its disputes, resolves and chargebacks name that an earlier night claimed.
Row groups whose tx range holds none of those are skipped, so a night's cost depends on
how far back its rows reach, not on how much history there is.

Committing is all or nothing: new files get new names, are flushed to disk, and then a
new manifest replaces the old one with one rename (the folder synced before and after).
Until that rename the old state is the state; after it, files the manifest no longer
names are removed. The state is its manifest alone: state files no committed manifest
names are what an interrupted run left, and the next run removes them under its lock.
A lock file keeps two runs off the same folder. The state's files are opened without
following symbolic links, and created new (O_EXCL), so nothing is read or written
through a link planted in the folder.

Checksums: the manifest records every file's size and SHA-256, and its own. The
balances and claimed ids are read whole and checked whole. A ledger is checked by size
and by the SHA-256 of its Parquet footer (which pins its layout, row groups and
statistics), and every page read from it is checked against the CRC written with it.
So a damaged or edited byte is refused whenever it would be used, and never becomes a
balance.
"""
