"""Write the docs pages rendered from the code: docs/env_spec.md (LRControlEnv's docstring), docs/env_options.md
(EnvConfig's options by part) and docs/agent_options.md (AgentConfig's keys), with defaults and help.
tests/test_schema.py checks that they are current.

    python scripts/dev/render_docs.py          # rewrite both pages
    python scripts/dev/render_docs.py --check  # exit 1, naming the stale page, when one differs
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rlsched.env.config import PARTS
from rlsched.env.lr_control import LRControlEnv
from rlsched.schema import AgentConfig, NormalizeConfig

DOCS = Path(__file__).resolve().parents[2] / "docs"

SPEC_HEADER = (
    "# rlsched/LRControl-v1\n\n"
    "<!-- Rendered from the `rlsched.env.lr_control.LRControlEnv` docstring, the source of truth; "
    "tests/test_env_ecosystem.py checks that the two agree. -->\n\n"
)


def _default(f: dataclasses.Field) -> str:
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if isinstance(value, tuple):
        value = list(value)
    return f"`{json.dumps(value)}`".replace("`null`", "null")


def options_page() -> str:
    lines = [
        "# Env options",
        "",
        "<!-- Rendered from `rlsched.env.config` by scripts/dev/render_docs.py; tests/test_schema.py checks "
        "that it is current. -->",
        "",
        'Every keyword of `gym.make("rlsched/LRControl-v1", ...)` and every `env.<option>=...` of the Hydra entry '
        "points, by the part of the env that defines it. The names are flat (`env.batch_size`, not "
        "`env.trainee.batch_size`). Defaults are the dataclasses' (Hydra runs set `data_dir` from `RLSCHED_DATA_DIR`, "
        "and the `dataset/` and `model/` groups set those options). A wrong key or type fails while Hydra composes; "
        "a bad value (an unknown model, lr_min >= lr_max, ...) when the config is built, before any data is read.",
        "",
    ]
    for part in PARTS:
        own = [f for f in dataclasses.fields(part) if f.name in part.__annotations__]
        lines += [f"## {part.__name__}", "", inspect.cleandoc(part.__doc__ or ""), ""]
        lines += [*_rows(own, "option"), ""]
    return "\n".join(lines)


def _rows(fields: Sequence[dataclasses.Field], column: str = "key") -> list[str]:
    """A markdown table of `fields`: name, default, help."""
    rows = [f"| {column} | default | meaning |", "|---|---|---|"]
    for f in fields:
        if dataclasses.is_dataclass(f.default_factory if f.default_factory is not dataclasses.MISSING else None):
            default = "see below"
        else:
            default = _default(f)
        text = f.metadata.get("help", "").replace("|", "\\|")
        rows.append(f"| `{f.name}` | {default} | {text} |")
    return rows


def agent_options_page() -> str:
    lines = [
        "# Agent options",
        "",
        "<!-- Rendered from `rlsched.schema` by scripts/dev/render_docs.py; tests/test_schema.py checks that it is "
        "current. -->",
        "",
        "Every `agent.<key>=...` of the Hydra entry points (`experiments/train.py`, `scripts/rq_train.py`, ...) and "
        "every key of the `agent` mapping `rlsched.train.agent.TrainingRun` takes. Defaults are `AgentConfig`'s; "
        "`conf/agent/ppo.yaml` sets PPO's hyperparameters under `ppo` (and `recurrent_ppo.yaml` the LSTM policy). "
        "A wrong key or type fails while Hydra composes; `ppo` keys are checked against SB3's signatures before "
        "anything is written ([runs](runs.md)).",
        "",
        "## AgentConfig",
        "",
        *_rows(dataclasses.fields(AgentConfig)),
        "",
        "## NormalizeConfig (`agent.normalize`)",
        "",
        inspect.cleandoc(NormalizeConfig.__doc__ or ""),
        "",
        *_rows(dataclasses.fields(NormalizeConfig)),
        "",
    ]
    return "\n".join(lines)


def spec_page() -> str:
    return SPEC_HEADER + inspect.cleandoc(LRControlEnv.__doc__) + "\n"


PAGES = {"env_options.md": options_page, "env_spec.md": spec_page, "agent_options.md": agent_options_page}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a page is stale")
    args = parser.parse_args()
    stale = []
    for name, render in PAGES.items():
        path, text = DOCS / name, render()
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text)
            print(f"wrote {path}")
    if args.check and stale:
        print(f"stale: {stale}; run python scripts/dev/render_docs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
