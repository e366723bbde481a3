"""The compiled kernels (numba): bytes, bitmaps, parsing, the first pass, the rules, claims.

The lowest layer of the job. Kernels work on numpy arrays of bytes and small integers
where they lie, and know nothing of files, Arrow or the state folder: a module here
imports only numpy, numba, `accounts_job.codes` and its neighbours in this package. The
Python that drives each kernel sits one layer up (`io.blocks` drives `lines`,
`engine.references` drives `references`, `engine.ledger` drives `rules`, and so on).

Every kernel is compiled on its first call and cached on disk (`cache=True`); the
package ships that cache, built for the common CPU level, numba and Python, in
`_compiled`. Python imports this module before any kernel module, so it chooses the CPU
target, the cache's stamp and where the cache lives (`_cache.install()`) before the first
kernel is defined.
"""

from . import _cache

_cache.install()
