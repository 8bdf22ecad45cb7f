"""Downloads verified against local file:// copies of the shared data."""

import shutil
import tarfile
from pathlib import Path

import pytest

from mmrefine.cli import main
from mmrefine.core.errors import DataError
from mmrefine.data.download import MNIST_FILES, check, download, require, sha256
from tests.conftest import DATA_ROOT, requires_data


@requires_data("mnist")
def test_mnist_download_verifies_checksums(tmp_path: Path, capsys) -> None:
    mirror = (DATA_ROOT / "mnist").resolve().as_uri()
    with pytest.raises(DataError, match="mnist: missing or damaged mnist/train-images.idx3-ubyte.gz.*mmrefine data download mnist"):
        require("mnist", tmp_path / "root")
    assert main(["data", "download", "mnist", "--data-root", str(tmp_path / "root"), "--base-url", mirror]) == 0
    for f, digest in MNIST_FILES.items():
        assert sha256(tmp_path / "root" / "mnist" / f) == digest
    assert check("mnist", tmp_path / "root") is None
    # a corrupt mirror: the bad file is removed and reported
    bad = tmp_path / "bad"
    shutil.copytree(DATA_ROOT / "mnist", bad)
    (bad / "t10k-labels.idx1-ubyte.gz").write_bytes(b"not mnist")
    with pytest.raises(DataError, match="t10k-labels.idx1-ubyte.gz: SHA-256 mismatch"):
        download("mnist", tmp_path / "root2", bad.as_uri())
    assert not (tmp_path / "root2" / "mnist" / "t10k-labels.idx1-ubyte.gz").exists()
    assert not list((tmp_path / "root2" / "mnist").glob("*.part"))


@requires_data("fsdd")
def test_fsdd_download_extracts_and_checks_the_manifest(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with tarfile.open(mirror / "v1.0.10.tar.gz", "w:gz", compresslevel=1) as tar:
        tar.add(DATA_ROOT / "fsdd" / "recordings", arcname="free-spoken-digit-dataset-1.0.10/recordings")
    out = download("fsdd", tmp_path / "root", mirror.as_uri())
    assert len(list(out.glob("*.wav"))) == 3000 and check("fsdd", tmp_path / "root") is None
    # an archive missing a file fails the content check and installs nothing
    with tarfile.open(mirror / "v1.0.10.tar.gz", "w:gz", compresslevel=1) as tar:
        for p in sorted((DATA_ROOT / "fsdd" / "recordings").glob("*.wav"))[1:]:
            tar.add(p, arcname=f"x/recordings/{p.name}")
    with pytest.raises(DataError, match="2999 WAV files"):
        download("fsdd", tmp_path / "root2", mirror.as_uri())
    assert not (tmp_path / "root2" / "fsdd" / "recordings").exists()
    partial = tmp_path / "partial" / "fsdd" / "recordings"
    partial.mkdir(parents=True)
    for p in sorted((DATA_ROOT / "fsdd" / "recordings").glob("*.wav"))[:10]:
        shutil.copy(p, partial)
    with pytest.raises(DataError, match=r"fsdd: missing or damaged fsdd/recordings \(2990 of 3000 WAV files\).*mmrefine data download fsdd"):
        require("fsdd", tmp_path / "partial")
