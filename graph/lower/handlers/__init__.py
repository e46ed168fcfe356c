"""The op handlers, one module per op family; importing this package fills
:data:`graph.lower.registry.HANDLERS`.

A handler is a function ``(lowering, node)`` decorated with
:func:`graph.lower.registry.handler` and the op types it lowers. The walker calls it once
the node is known to take the pending activation (``lowering.pending``) as its one dynamic
input; the handler appends a step to the pending chain, permutes its index, or
materializes it (:mod:`graph.lower.thresholds`) and sets a new pending tensor. Adding an
op is one decorated function in one of these modules (or a new module imported here).
"""

# the import order is the order of the supported ops in error messages
from . import elementwise, shapes, matmul, conv, pool, joins, select  # noqa: F401
