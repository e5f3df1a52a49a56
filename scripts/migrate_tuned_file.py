"""Give a tuned-settings file written before tuned keys were hashed (an older rlsched) its hashed name and its
task record, for the task of an env config (a JSON file: an artifact's env_config.json, or a run's).

python scripts/migrate_tuned_file.py conf/tuned/taskset_mlp_train_adam_K5.yaml results/taskset/.../env_config.json

Only for a file you know was tuned on exactly that task: the record is what later loads check against.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import yaml

from rlsched.config import TASK_RECORD, task_record, tuned_file


def main(old: Path, env_json: Path) -> None:
    env_kw = json.loads(env_json.read_text())
    new = tuned_file(env_kw, old.parent)
    text = old.read_text()
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    data = yaml.safe_load(text) or {}
    if TASK_RECORD in data:
        raise SystemExit(f"{old} already records its task")
    body = yaml.safe_dump({TASK_RECORD: task_record(env_kw), **data}, sort_keys=False)
    new.write_text(header + body)
    if new != old:
        subprocess.run(["git", "mv", "-f", str(old), str(new)], check=False, capture_output=True)
        if old.exists():
            old.unlink()
    print(f"{old} -> {new}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tuned_file", type=Path, help="the old tuned-settings YAML")
    ap.add_argument("env_json", type=Path, help="the env config (JSON) of the task it was tuned on")
    args = ap.parse_args()
    for p in (args.tuned_file, args.env_json):
        if not p.is_file():
            raise SystemExit(f"{p} does not exist")
    main(args.tuned_file, args.env_json)
