"""Analysis of trained runs: ``metrics`` (collapse indicators, also logged in training),
``probe`` (physical-state probes), ``surprise`` (violation of expectation) and ``ablation``
(the anti-collapse ablation). Nothing is imported here: ``ablation`` pulls in training.
"""
