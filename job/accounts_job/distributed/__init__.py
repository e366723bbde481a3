"""The run split by client into shards (sharded.py, claims.py), and run on Dask (cluster.py).

Above the engine: it reuses the engine's parser, ledger and rejects, and imports neither
the state nor the command line. Dask is imported only by cluster.py, and cluster.py only
when a run asks for a cluster.
"""
