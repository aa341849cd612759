"""A zoo of drop-in `torch.nn.LSTM` look-alikes for testing the harness itself.

`correct.CORRECT` lists classes the harness must pass (correct LSTMs computed differently);
`broken.BROKEN` lists classes it must catch, each with one bug, its ``expected_checks`` and the
``features`` a case needs to show it. Load one as ``tests.harness.lstms.broken:GateOrderIGFO``.
"""

from .broken import BROKEN
from .correct import CORRECT

__all__ = ["BROKEN", "CORRECT"]
