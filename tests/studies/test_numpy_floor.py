"""The lower-bound study of a NumPy LSTM forward runs and prints every loop it times (it asserts
no time: speed is measured, not asserted)."""

from parity_studies import numpy_floor


def test_the_floor_study_times_each_loop_against_nn_lstm(capsys):
    assert numpy_floor.main(["--shape", "3,2,2,4", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "shape (3, 2, 2, 4) float32" in out
    for name in ("products ", "products (input hoisted)", "products + exp ",
                 "products + exp (input hoisted)", "numpy ", "nn.LSTM "):
        assert f"  {name}" in out, name
