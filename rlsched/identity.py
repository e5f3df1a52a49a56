"""Which keys of two run identities differ: the one comparison behind "is this the same run?" refusals
(training folders, tuning studies). Shared by rlsched.train and rlsched.bench, so it lives beside them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ABSENT = "<absent>"


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"agent": {"ppo": {"gamma": 1}}} -> {"agent.ppo.gamma": 1}; lists stay whole values."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out |= flatten(value, f"{name}.")
        else:
            out[name] = value
    return out


def differing_keys(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    only_common: bool = False,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, tuple[Any, Any]]:
    """Flattened keys whose values differ, as (old, new); `only_common` compares keys present in both only.

    A key absent on one side counts as its value in `defaults` (flattened keys), if it has one there: an
    option added to the code since a run started, left at its default, does not make it another run.
    """
    a, b = flatten(old), flatten(new)
    keys = sorted(set(a) & set(b)) if only_common else sorted(set(a) | set(b))
    fill = dict(defaults or {})
    out = {}
    for k in keys:
        va, vb = a.get(k, fill.get(k, ABSENT)), b.get(k, fill.get(k, ABSENT))
        if va != vb:
            out[k] = (a.get(k, ABSENT), b.get(k, ABSENT))
    return out
