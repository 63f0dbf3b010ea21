"""The numpy engines of the rate rules: one module per computational form.

All functions here take validated arrays with the batch and head axes merged into one
leading axis ``N = B * H``: ``q, k (N, T, d_k)`` (after the feature map), ``v (N, T, d_v)``,
``beta (N, T)``, ``alpha (N, T, 1)`` (scalar decay) or ``(N, T, d_k)`` (per key), states
``(N, d_v, d_k)``. They return ``y (N, T, d_v)`` and the final state(s).
"""
