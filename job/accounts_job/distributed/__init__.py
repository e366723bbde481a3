"""The run split by client into shards (sharded.py, claims.py), and run on Dask (cluster.py).

Above the engine: it reuses the engine's parser, ledger and rejects, and imports neither
the state nor the command line. Dask is imported only by cluster.py, and cluster.py only
when a run asks for a cluster.
"""

# How long a cluster run waits, in seconds (docs/rules.md §6), here so that the library
# and the command line share them without importing cluster.py on a plain run. Connecting
# to the scheduler: reaching it and its handshake.
CONNECT_TIMEOUT = 20.0
# A run gives up when, for this long, its cluster has had no worker and no step finished:
# Dask itself would wait for a worker forever.
STALL_TIMEOUT = 300.0
