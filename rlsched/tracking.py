"""Weights & Biases logging shared by every entry point; offline by default (`wandb sync` later).

Metric names are grouped: `trainee/*` (the network being trained), `controller/*` (PPO), `eval/*`
(evaluation episodes), `final/*` (end-of-run numbers). `backend: none` turns logging off entirely.
"""

from __future__ import annotations

import json
import math
import os
import struct
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

WANDB_MODES = ("offline", "online", "disabled")
BACKENDS = ("wandb", "none")


class Tracker:
    def __init__(
        self,
        *,
        backend: str = "wandb",
        mode: str = "offline",
        project: str = "rlsched",
        entity: str | None = None,
        group: str | None = None,
        job_type: str | None = None,
        name: str | None = None,
        tags: list[str] | tuple[str, ...] = (),
        config: Mapping[str, Any] | None = None,
        dir: str | os.PathLike = ".",
    ):
        if backend not in BACKENDS:
            raise ValueError(f"unknown logger backend {backend!r}; allowed: {list(BACKENDS)}")
        if mode not in WANDB_MODES:
            raise ValueError(f"unknown logger mode {mode!r}; allowed: {list(WANDB_MODES)}")
        self.run = None
        if backend == "none" or mode == "disabled":
            return
        import wandb

        os.environ.setdefault("WANDB_SILENT", "true")
        Path(dir).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            mode=mode,
            project=project,
            entity=entity,
            group=group,
            job_type=job_type,
            name=name,
            tags=list(tags),
            config=dict(config or {}),
            dir=str(dir),
            reinit="finish_previous",
        )

    @property
    def enabled(self) -> bool:
        return self.run is not None

    @property
    def run_dir(self) -> Path | None:
        return Path(self.run.dir).parent if self.run is not None else None

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if self.run is not None:
            self.run.log(dict(metrics), step=step)

    def log_table(self, key: str, df: pd.DataFrame) -> None:
        if self.run is not None:
            import wandb

            self.run.log({key: wandb.Table(dataframe=df.reset_index(drop=True))})

    def log_images(self, images: Mapping[str, str | os.PathLike]) -> None:
        if self.run is not None:
            import wandb

            self.run.log({k: wandb.Image(str(p)) for k, p in images.items()})

    def summary(self, values: Mapping[str, Any]) -> None:
        if self.run is not None:
            for k, v in values.items():
                self.run.summary[k] = v

    def finish(self) -> None:
        if self.run is not None:
            run_dir = self.run_dir
            self.run.finish()
            self.run = None
            # finish() can return before W&B's writer process has flushed the run file's last block (the last
            # history rows, the summary): wait for its closing record, so that the file is whole once we return.
            if run_dir is not None and any(run_dir.glob("run-*.wandb")):
                wait_for_run_file(run_dir)


def format_duration(seconds: float) -> str:
    """12s, 3m05s, 1h07m: for progress lines and closing lines."""
    if not math.isfinite(seconds):
        return "?"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def tracker_from_config(
    logger_cfg: Mapping[str, Any],
    *,
    job_type: str,
    config: Mapping[str, Any],
    out_dir: str | os.PathLike,
    name: str | None = None,
) -> Tracker:
    """Build a Tracker from the `logger` config group."""
    cfg = dict(logger_cfg)
    return Tracker(
        backend=cfg.get("backend", "wandb"),
        mode=cfg.get("mode", "offline"),
        project=cfg.get("project", "rlsched"),
        entity=cfg.get("entity"),
        group=cfg.get("group"),
        job_type=job_type,
        name=name or cfg.get("name"),
        tags=cfg.get("tags") or (),
        config=config,
        dir=out_dir,
    )


# ----- reading offline runs without a server ------------------------------------------------------------
# A .wandb file is a LevelDB-style log: a 7-byte header, then 32 KiB blocks of records, each with a 7-byte
# header (crc32 u32, length u16, type u8; type 1 full, 2 first, 3 middle, 4 last) carrying protobuf Records.
_BLOCK = 32 * 1024
_HEADER = 7


def _records(path: Path):
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    pos, pending = _HEADER, b""
    while pos + _HEADER <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < _HEADER:  # block trailer padding
            pos += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        if pos + _HEADER + length > len(data):  # a record still being written
            break
        chunk = data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind == 1:
            yield chunk
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            yield pending + chunk
            pending = b""
        else:  # zero padding at the end of a file being written
            break


def _parsed_records(run_dir: str | os.PathLike) -> list:
    from wandb.proto import wandb_internal_pb2 as pb

    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file in {run_dir}")
    out = []
    for raw in _records(files[0]):
        rec = pb.Record()
        rec.ParseFromString(raw)
        out.append(rec)
    return out


def _is_closed(records: list) -> bool:
    return bool(records) and records[-1].WhichOneof("record_type") == "exit"


def wait_for_run_file(run_dir: str | os.PathLike, timeout_s: float = 30.0) -> bool:
    """Wait until a finished run's file ends with its `exit` record; False if it did not within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not _is_closed(_parsed_records(run_dir)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _run_records(run_dir: str | os.PathLike, timeout_s: float = 10.0) -> list:
    """The parsed protobuf Records of an offline run's `run-*.wandb` file; a run just finished (perhaps by
    another process) is given `timeout_s` to be written out whole, else what is there is read."""
    wait_for_run_file(run_dir, timeout_s)
    return _parsed_records(run_dir)


def _items(items) -> dict[str, Any]:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def read_offline_history(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every `log` call of an offline run as a dict, read from its `run-*.wandb` file."""
    return [_items(r.history.item) for r in _run_records(run_dir) if r.WhichOneof("record_type") == "history"]


def read_offline_summary(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The run summary (`Tracker.summary` values) of an offline run, read from its `run-*.wandb` file."""
    out: dict[str, Any] = {}
    for r in _run_records(run_dir):
        if r.WhichOneof("record_type") == "summary":
            out |= _items(r.summary.update)
    return out
