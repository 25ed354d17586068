"""The run folder: checked for writability up front, a JSONL loss log, the config as JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import StylenormError
from ..io.atomic import atomic_write

__all__ = ["RunLog", "check_run_dir", "prepare_run_dir", "write_config"]

NON_LOSS_KEYS = {"iter", "lr"}


def prepare_run_dir(out: str | os.PathLike, resume: bool, checkpoint_name: str) -> Path:
    """Create the run folder, prove it is writable, refuse to train over an existing run unless
    resuming, and remove temporary files a killed run left behind."""
    run_dir = Path(out)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise StylenormError(
            f"--out {run_dir}: cannot write there ({exc.strerror or exc}); choose a writable folder"
        ) from None
    check_run_dir(run_dir, resume, checkpoint_name)
    for stale in [*run_dir.glob(".*.part"), *run_dir.glob("samples/.*.part")]:
        stale.unlink(missing_ok=True)
    return run_dir


def check_run_dir(out: str | os.PathLike, resume: bool, checkpoint_name: str) -> None:
    """Refuse ``--resume`` without a run in ``out``, and a new run over one: a check without
    side effects, so that trainers with long preparations (a teacher cache) make it first."""
    run_dir = Path(out)
    has_run = (run_dir / checkpoint_name).exists()
    if resume and not has_run:
        raise StylenormError(f"--resume: {run_dir} holds no {checkpoint_name} to resume from")
    if not resume and has_run:
        raise StylenormError(
            f"--out {run_dir} already holds a run; add --resume to continue it, or choose "
            "another --out"
        )


def write_config(path: Path, config: dict) -> Path:
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))
    return path


class RunLog:
    """``log.jsonl``: one JSON object per logged iteration, ``{"iter": .., "lr": .., <losses>}``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: dict) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def records(self) -> list[dict]:
        """Every complete record (a line cut short by a killed run is ignored)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def truncate(self, iteration: int) -> None:
        """Keep the records up to ``iteration`` (those after a checkpoint are replayed)."""
        kept = [r for r in self.records() if r["iter"] <= iteration]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        atomic_write(self.path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def loss_keys(self) -> list[str]:
        records = self.records()
        return [k for k, v in records[-1].items()
                if k not in NON_LOSS_KEYS and not isinstance(v, dict)] if records else []

    def final_losses(self, window: int = 50) -> dict[str, float]:
        """Mean of each loss over the last ``window`` records."""
        records = self.records()[-window:]
        keys = self.loss_keys()
        return {k: round(sum(r[k] for r in records) / len(records), 6) for k in keys}
