"""A stage's CSV training logs (``STAGE_DIR/logs/metrics*.csv``), read back across resumed
segments. Reading them needs pandas, not torch or Lightning: a sweep's report loads neither."""

from __future__ import annotations

from pathlib import Path

from mmrefine.core.errors import DataError


def keep_previous_logs(log_dir: Path) -> None:
    """Lightning's CSV logger deletes an existing metrics.csv: keep it as a numbered part."""
    current = log_dir / "metrics.csv"
    if current.is_file():
        k = len(list(log_dir.glob("metrics.part*.csv")))
        current.rename(log_dir / f"metrics.part{k}.csv")


def read_logs(stage_dir: str | Path) -> "pandas.DataFrame":  # noqa: F821
    """All CSV log rows of a stage, earlier (interrupted) segments first.

    A resumed segment restarts at the epoch after its checkpoint; rows of an
    earlier segment from that epoch on (the epoch the interruption cut short)
    are dropped, so every epoch appears once."""
    import pandas as pd

    log_dir = Path(stage_dir) / "logs"
    parts = sorted(log_dir.glob("metrics.part*.csv"), key=lambda p: int(p.stem.split("part")[1]))
    files = [*parts, log_dir / "metrics.csv"]
    frames = [_read_csv_log(f) for f in files if f.is_file() and f.stat().st_size > 0]
    if not frames:
        raise DataError(f"no CSV logs under {log_dir}")
    kept = []
    for i, frame in enumerate(frames):
        later = [f["epoch"].min() for f in frames[i + 1:] if "epoch" in f and len(f)]
        if later and "epoch" in frame:
            frame = frame[frame["epoch"] < min(later)]
        kept.append(frame)
    return pd.concat(kept, ignore_index=True)


def _read_csv_log(path: Path) -> "pandas.DataFrame":  # noqa: F821
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: cannot read these training logs ({' '.join(str(exc).split())}); the file is damaged") from exc
    if "epoch" in frame and not pd.api.types.is_numeric_dtype(frame["epoch"]):
        raise DataError(f"{path}: column 'epoch' holds text; the file is damaged")
    return frame
