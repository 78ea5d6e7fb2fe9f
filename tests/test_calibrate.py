"""training/calibrate.py: the causal temperature that brings a student's next-token distribution to its teacher's."""

from types import SimpleNamespace

import torch

from training.calibrate import GRID, fit, kl_by_temperature


class TableLM(torch.nn.Module):
    """A causal 'model' whose logits for a token are a fixed row of a table, times `sharpness`."""

    def __init__(self, table: torch.Tensor, sharpness: float) -> None:
        super().__init__()
        self.table, self.sharpness = table, sharpness

    def forward(self, ids: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.table[ids] * self.sharpness)


TABLE = torch.randn(12, 12, generator=torch.Generator().manual_seed(0)) * 2
PAIRS = [([1, 2, 3], [4, 5, 6, 7]), ([8, 9], [10, 11, 0])]


def test_the_fit_undoes_a_student_sharper_than_its_teacher():
    result = fit(TableLM(TABLE, 1.0), TableLM(TABLE, 1.3), PAIRS)
    assert result["causal_temperature"] == 1.3 and result["tokens"] == 7 and result["answers"] == 2
    assert result["kl_fitted"] < 1e-9 < result["kl_at_1"]


def test_a_student_that_matches_its_teacher_keeps_temperature_1_and_a_flatter_one_gets_below_1():
    assert fit(TableLM(TABLE, 1.0), TableLM(TABLE, 1.0), PAIRS)["causal_temperature"] == 1.0
    assert fit(TableLM(TABLE, 1.0), TableLM(TABLE, 0.8), PAIRS)["causal_temperature"] == 0.8


def test_kl_is_zero_only_at_the_matching_temperature():
    kl = kl_by_temperature(TABLE, TABLE * 1.5)
    assert kl.argmin() == GRID.index(1.5) and float(kl.min()) < 1e-9 and bool((kl >= 0).all())
