"""Every registered implementation, every check: the harness run the way users run it.

Parametrized by the parity pytest plugin (ids ``naive-output``, ``fused-gradients``...);
``pytest --parity-impl mypkg:MyLSTM`` runs these for another implementation instead.
"""


def test_parity(parity_target):
    parity_target.verify()
