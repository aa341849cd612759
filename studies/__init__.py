"""Studies shown in the report beside the checks; installed as `parity_studies`.

They are not implementations (nothing here registers one): `nested_audit` measures seed 000's
hand-derived training gradients against back-propagation through time, and `numpy_floor` times
the loops a NumPy LSTM cannot avoid against `nn.LSTM`. Run them with
``python -m parity_studies.nested_audit`` and ``python -m parity_studies.numpy_floor``.
"""
