"""Fetch MNIST and the Free Spoken Digit Dataset into a data root, verified.

``mmrefine data download NAME --data-root DIR`` downloads into the upstream
layout this package reads (``DIR/mnist/*.gz``, ``DIR/fsdd/recordings/*.wav``):

* ``mnist``: the four gzipped idx files, each checked against its SHA-256;
* ``fsdd``: the v1.0.10 source archive; its ``recordings/`` folder is extracted
  and checked against a content manifest (SHA-256 over the sorted
  ``name:sha256`` lines of the 3,000 WAV files).

A file that fails its check is deleted and reported; nothing half-written is
left under its final name. ``--base-url`` points at a mirror (or a ``file://``
copy). :func:`check` lists what is missing under a data root and how to get it.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mmrefine.core.errors import ConfigError, DataError
from mmrefine.data.sources import read_wav

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_FILES = {
    "train-images.idx3-ubyte.gz": "b09d8b89df4ad239afc76a323dbe9559169cd8cca365467dfe8aa1f7ca54109b",
    "train-labels.idx1-ubyte.gz": "c51906e7929bbf7c824fbd16019b56297269ca82cba449c5b5d59c0a02147fed",
    "t10k-images.idx3-ubyte.gz": "f72c2dff3457595ec2fe452d25d97b7f974a74ad5b006687704212bedd1486d8",
    "t10k-labels.idx1-ubyte.gz": "4baf84ddd60ae342cfdd282ec3fba3249a201a4459782165496a7cbebbe49a2e",
}
# upstream names use a dash before "ubyte"; the mirror above serves them with the same bytes
MNIST_REMOTE = {k: k.replace(".idx", "-idx") for k in MNIST_FILES}
FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/"
FSDD_ARCHIVE = "v1.0.10.tar.gz"
FSDD_MANIFEST = "dd93b0a7fbb2e32fe9dcbe4cdd530cddf30ce8811facf81c10d7b3beaa23e6ca"
FSDD_COUNT = 3000
DATASETS = ("mnist", "fsdd")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest(folder: Path) -> str:
    lines = sorted(f"{p.name}:{sha256(p)}" for p in folder.glob("*.wav"))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _fetch(url: str, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"cannot download {url}: {exc}") from exc
    tmp.replace(dest)


@dataclass
class Missing:
    dataset: str
    files: list[str]

    def message(self, root: Path) -> str:
        few = ", ".join(self.files[:4]) + (f" and {len(self.files) - 4} more" if len(self.files) > 4 else "")
        return f"{self.dataset}: missing or damaged {few} under {root}; get them with `mmrefine data download {self.dataset} --data-root {root}`"


def check(name: str, root: str | Path) -> Missing | None:
    """What of dataset ``name`` is missing or damaged under ``root`` (None when
    complete). Contents are verified, not only names: each MNIST file against
    its SHA-256; FSDD against the manifest of the 3,000 recordings, and when that
    differs, every WAV's header and length, so the damaged files are named."""
    root = Path(root)
    if name == "mnist":
        missing = []
        for f, digest in MNIST_FILES.items():
            path = root / "mnist" / f
            if not path.is_file():
                missing.append(f"mnist/{f}")
            elif sha256(path) != digest:
                missing.append(f"mnist/{f} (corrupt: SHA-256 differs)")
    elif name == "fsdd":
        rec = root / "fsdd" / "recordings"
        n = len(list(rec.glob("*.wav"))) if rec.is_dir() else 0
        missing = [] if n == FSDD_COUNT else [f"fsdd/recordings ({FSDD_COUNT - n} of {FSDD_COUNT} WAV files)"]
        if not missing and manifest(rec) != FSDD_MANIFEST:
            missing = [f"fsdd/recordings/{p.name} (corrupt: {_wav_problem(p)})" for p in sorted(rec.glob("*.wav")) if _wav_problem(p)]
            missing = missing or ["fsdd/recordings (contents differ from FSDD v1.0.10)"]
    else:
        raise ConfigError(f"unknown dataset '{name}'; downloadable: {', '.join(DATASETS)}")
    return Missing(name, missing) if missing else None


def _wav_problem(path: Path) -> str:
    try:
        read_wav(path)
    except DataError as exc:
        return str(exc).split(": ", 1)[-1]
    return ""


def require(name: str, root: str | Path) -> None:
    """Raise :class:`DataError` naming exactly what is missing and how to get it."""
    miss = check(name, root)
    if miss is not None:
        raise DataError(miss.message(Path(root)))


def download(name: str, root: str | Path, base_url: str | None = None) -> Path:
    """Download and verify dataset ``name`` into ``root``; return its folder."""
    root = Path(root)
    if name == "mnist":
        out = root / "mnist"
        out.mkdir(parents=True, exist_ok=True)
        base = base_url or MNIST_URL
        for local, digest in MNIST_FILES.items():
            dest = out / local
            if dest.is_file() and sha256(dest) == digest:
                continue
            remote = local if base_url else MNIST_REMOTE[local]
            _fetch(base.rstrip("/") + "/" + remote, dest)
            if sha256(dest) != digest:
                dest.unlink()
                raise DataError(f"{local}: SHA-256 mismatch (expected {digest}); the download was removed")
        return out
    if name == "fsdd":
        out = root / "fsdd" / "recordings"
        if out.is_dir() and manifest(out) == FSDD_MANIFEST:
            return out
        with tempfile.TemporaryDirectory(dir=root if root.is_dir() else None) as tmp:
            archive = Path(tmp) / FSDD_ARCHIVE
            _fetch((base_url or FSDD_URL).rstrip("/") + "/" + FSDD_ARCHIVE, archive)
            staged = Path(tmp) / "recordings"
            staged.mkdir()
            try:
                with tarfile.open(archive, "r:gz") as tar:
                    for m in tar.getmembers():
                        if m.isfile() and "/recordings/" in m.name and m.name.endswith(".wav"):
                            src = tar.extractfile(m)
                            if src is None:
                                raise DataError(f"{FSDD_ARCHIVE}: cannot read {m.name}")
                            (staged / Path(m.name).name).write_bytes(src.read())
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise DataError(f"{FSDD_ARCHIVE}: corrupt archive ({exc})") from exc
            got = manifest(staged)
            if got != FSDD_MANIFEST:
                n = len(list(staged.glob("*.wav")))
                raise DataError(f"FSDD recordings fail the content check ({n} WAV files, manifest {got}); nothing was installed")
            out.parent.mkdir(parents=True, exist_ok=True)
            if out.exists():
                shutil.rmtree(out)
            shutil.move(str(staged), out)
        return out
    raise ConfigError(f"unknown dataset '{name}'; downloadable: {', '.join(DATASETS)}")
