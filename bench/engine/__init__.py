"""The run engine: one way to execute every kind of work a run does.

* :mod:`.isolation` -- worker processes that survive plugin crashes and hangs;
* :mod:`.backends` -- the :class:`~.backends.Job` protocol (a kind of work: extraction,
  comparison, 1:N search) and the backends that run its units (local pool, Dask);
* :mod:`.extraction` -- templates from images, through the template cache;
* :mod:`.comparison` -- the pairs of a 1:1 protocol, in units that let a matcher reuse
  its prepared templates.

1:1 (:mod:`bench.runner`) and 1:N (:mod:`bench.identification.runner`) runs are both
built from these parts.
"""
