"""Readers for the raw upstream files AV-MNIST is built from.

* MNIST idx files, gzipped (``mnist/{train,t10k}-{images.idx3,labels.idx1}-ubyte.gz``);
* Free Spoken Digit Dataset WAVs (``fsdd/recordings/{digit}_{speaker}_{take}.wav``),
  8 kHz mono 16-bit PCM, read with the standard library's :mod:`wave`.

Every malformed input raises :class:`~mmrefine.core.errors.DataError` naming the file.
"""

from __future__ import annotations

import gzip
import wave
import zlib
from pathlib import Path

import numpy as np

from mmrefine.core.errors import DataError

FSDD_RATE = 8000


def read_idx(path: Path) -> np.ndarray:
    """An MNIST idx file (gzipped) as a uint8 array: (N, 28, 28) images or (N,) labels."""
    if not path.is_file():
        raise DataError(f"missing MNIST file {path}")
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt gzip stream ({exc})") from exc
    if len(raw) < 8 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte idx file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(raw) - offset != expected:
        raise DataError(f"{path}: header promises {dims} = {expected} bytes, file holds {len(raw) - offset}")
    return np.frombuffer(raw, np.uint8, offset=offset).reshape(dims)


def read_wav(path: Path) -> np.ndarray:
    """One FSDD recording as int16 samples; checks format and length against the header."""
    if not path.is_file():
        raise DataError(f"missing FSDD recording {path}")
    try:
        with wave.open(str(path), "rb") as w:
            fmt = (w.getnchannels(), w.getsampwidth(), w.getframerate())
            n = w.getnframes()
            data = w.readframes(n)
    except (wave.Error, EOFError, OSError) as exc:
        raise DataError(f"{path}: not a readable WAV file ({exc})") from exc
    if fmt != (1, 2, FSDD_RATE):
        raise DataError(f"{path}: expected mono 16-bit {FSDD_RATE} Hz PCM, got channels/bytes/rate {fmt}")
    if len(data) != 2 * n or n == 0:
        raise DataError(f"{path}: truncated WAV (header says {n} samples, file holds {len(data) // 2})")
    return np.frombuffer(data, "<i2")


def fsdd_files(folder: Path, speakers: list[str], digits: range = range(10), takes: range = range(50)) -> list[Path]:
    """The FSDD paths for ``speakers`` x ``digits`` x ``takes``, in that nesting order."""
    return [folder / f"{d}_{s}_{t}.wav" for s in speakers for d in digits for t in takes]
