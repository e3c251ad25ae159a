"""The choices of :func:`verify.explain` as plain data, so that the command line can offer
them in its help without importing the explanation code (numpy, scipy, the backends)."""

#: How pixels are freed (see :mod:`verify.tasks.explain`).
METHODS = ("batch", "sequential", "seed")
#: The order in which pixels are tried.
ORDERS = ("influence", "index")
