"""Datasets: episodes in flat columns, clip batches, and the sources that make them.

``episodes`` (the :class:`Episodes` layout and action statistics), ``clips`` (the
deterministic, resumable :class:`ClipSource`), ``datasets`` (``config.data.name`` -> a
source), ``collect`` (episodes from a registered environment), ``moving_dot``, ``hdf5``
(the official stable-worldmodel files). Nothing is imported here, so each stays light.
"""
