"""The demo says whether training improved on its initial policy, from the run's own selection log."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rlsched.bench.protocol_plots import selection_report


def _run(tmp_path: Path, scores: list[float]) -> Path:
    (tmp_path / "eval").mkdir(parents=True)
    best = [s == min(scores[: i + 1]) for i, s in enumerate(scores)]
    pd.DataFrame({"timesteps": [0, 2040, 4080, 6000][: len(scores)], "score": scores, "best": best}).to_csv(
        tmp_path / "eval" / "selection.csv", index=False
    )
    return tmp_path


def test_a_run_that_beats_its_initial_policy_says_so_and_plots_the_curve(tmp_path: Path) -> None:
    run = _run(tmp_path, [0.3628, 0.3674, 0.3603, 0.3564])
    text = selection_report(run)
    assert text.startswith("| PPO timesteps") and "learned: the best selection loss 0.3564" in text
    assert "-0.0064" in text and (run / "selection.png").stat().st_size > 1000


def test_a_run_that_never_beats_its_initial_policy_says_not_learned(tmp_path: Path) -> None:
    text = selection_report(_run(tmp_path, [0.2713, 0.3310, 0.2847]))
    assert "not learned: no checkpoint beat the initial policy's selection loss 0.2713" in text


def test_no_selection_log_no_report(tmp_path: Path) -> None:
    assert selection_report(tmp_path) == ""
