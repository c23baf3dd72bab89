"""Analysis of trained runs: ``probe`` (physical-state probes), ``surprise`` (violation of
expectation), ``ablation`` (the anti-collapse ablation), ``sweep`` and ``curve``. Nothing is
imported here: most pull in training (the ``train`` extra). The collapse indicators, which
the core install and training share, are ``lewm_jax.metrics``.
"""
