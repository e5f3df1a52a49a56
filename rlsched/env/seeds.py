"""The four seed sets of an experiment, disjoint by construction.

An episode seed fixes a trainee's initialization, data split and data order (`env.reset(seed=s)`). A result is
honest only if the seeds that *train* the controller, *select* its checkpoint, *tune* the baselines and
*evaluate* everything are different trainees:

- evaluation: 0 .. 9_999 (the benchmark's `seeds`, e.g. 0..19)
- tuning:     20_000 .. 29_999 (the baselines' tuning sweep)
- selection:  30_000 .. 39_999 (checkpoint selection during PPO training)
- training:   1_000_000 .. (PPO's training episodes, a finite pool so that per-seed reference curves are reused)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

SEED_RANGES: dict[str, range] = {
    "evaluation": range(0, 10_000),
    "tuning": range(20_000, 30_000),
    "selection": range(30_000, 40_000),
    "training": range(1_000_000, 2_000_000),
}


def seed_block(kind: str, start: int, count: int) -> list[int]:
    """`count` seeds of set `kind` from offset `start` within it; refuses a block that leaves the set."""
    r = SEED_RANGES[kind]
    if count < 1 or start < 0 or start + count > len(r):
        raise ValueError(f"{kind} seeds need 0 <= start and start+count <= {len(r)}, got start={start} count={count}")
    return list(r[start : start + count])


def check_disjoint(sets: Mapping[str, Iterable[int]]) -> None:
    """Each named set must lie inside its own range (so no two sets can share a seed)."""
    for kind, seeds in sets.items():
        if kind not in SEED_RANGES:
            raise ValueError(f"unknown seed set {kind!r}; known: {list(SEED_RANGES)}")
        r = SEED_RANGES[kind]
        bad = sorted(int(s) for s in seeds if int(s) not in r)
        if bad:
            raise ValueError(
                f"{kind} seeds {bad[:5]} lie outside the {kind} range [{r.start}, {r.stop}); the four seed sets "
                f"(evaluation, tuning, selection, training) must be disjoint: see rlsched/env/seeds.py"
            )
