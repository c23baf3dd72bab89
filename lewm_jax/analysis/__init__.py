"""Analysis of trained runs: ``metrics`` (collapse indicators, also logged in training),
``probe`` (physical-state probes), ``surprise`` (violation of expectation) and ``ablation``
(the anti-collapse ablation). Nothing is imported here: ``metrics`` needs only the core
install (jax, chex, numpy), while ``ablation`` pulls in training (the ``train`` extra).
"""
