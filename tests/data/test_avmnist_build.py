"""AV-MNIST built from the real MNIST + FSDD files: determinism, caching, the
published split and pairing, faithfulness to the widely used image files, and
clear errors for missing, truncated and corrupt inputs."""

from __future__ import annotations

import gzip
import json
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from mmrefine.core.errors import ConfigError, DataError
from mmrefine.data.avmnist import AVMNISTDataModule
from mmrefine.data.avmnist_build import AVMNISTRecipe, build, cache_key, dft_matrix, pink_noise
from mmrefine.data.dataset import decode
from mmrefine.data.settings import DataSettings
from mmrefine.data.sources import read_idx, read_wav
from tests.conftest import DATA_ROOT, requires_data

RAW_PRESENT = DATA_ROOT is not None and (DATA_ROOT / "mnist").exists() and (DATA_ROOT / "fsdd" / "recordings").exists()
needs_raw = pytest.mark.skipif(not RAW_PRESENT, reason="real data 'mnist' and 'fsdd' not found under ../shared/data (set MMREFINE_DATA)")
SMALL = AVMNISTRecipe(limit=300)


@pytest.fixture(scope="module")
def full_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The complete default build (about 30 s on 2 cores), shared by this module."""
    if not RAW_PRESENT:
        pytest.skip("real data 'mnist' and 'fsdd' not found under ../shared/data (set MMREFINE_DATA)")
    return build(DATA_ROOT, AVMNISTRecipe(), tmp_path_factory.mktemp("avmnist-cache"))


def _mirror(tmp: Path) -> Path:
    """A data root of symbolic links to the real files, safe to break."""
    root = tmp / "root"
    (root / "fsdd" / "recordings").mkdir(parents=True)
    (root / "mnist").symlink_to(DATA_ROOT / "mnist")
    for p in (DATA_ROOT / "fsdd" / "recordings").glob("*.wav"):
        (root / "fsdd" / "recordings" / p.name).symlink_to(p)
    return root


@pytest.mark.slow
def test_published_split_sizes_shapes_and_balance(full_build: tuple[Path, dict]) -> None:
    folder, meta = full_build
    assert meta["sizes"] == {"train": 55_000, "val": 5_000, "test": 10_000}
    image, audio, label = (np.load(folder / f"{n}.npy", mmap_mode="r") for n in ("image", "audio", "label"))
    assert image.shape == (70_000, 784) and image.dtype == np.float32
    assert audio.shape == (70_000, 112, 112) and audio.dtype == np.uint8
    # every spectrogram uses the full 0..255 range (its own maximum maps to 255)
    assert int(audio[::997].max(axis=(1, 2)).min()) == 255
    counts = np.bincount(label[:55_000], minlength=10)
    assert counts.min() > 4_500 and counts.max() < 6_500  # MNIST's own balance
    # labels follow MNIST order: validation = the last 5,000 training rows, test = t10k
    mnist_train = read_idx(DATA_ROOT / "mnist" / "train-labels.idx1-ubyte.gz")
    np.testing.assert_array_equal(label[:60_000], mnist_train)
    np.testing.assert_array_equal(label[60_000:], read_idx(DATA_ROOT / "mnist" / "t10k-labels.idx1-ubyte.gz"))


@pytest.mark.slow
def test_pairing_matches_digits_and_holds_out_the_test_speaker(full_build: tuple[Path, dict]) -> None:
    folder, _ = full_build
    rec = np.load(folder / "recording.npy")
    label = np.load(folder / "label.npy")
    digit = np.array([int(s.split("_")[0]) for s in rec])
    speaker = np.array([s.split("_")[1] for s in rec])
    np.testing.assert_array_equal(digit, label)
    assert set(speaker[:60_000]) == {"jackson", "nicolas", "theo"}
    assert set(speaker[60_000:]) == {"yweweler"}
    # cycled: every one of the 150 training takes of a digit is used, each about equally often
    uses = np.unique(rec[:55_000][label[:55_000] == 1], return_counts=True)[1]
    assert len(uses) == 150 and uses.max() - uses.min() <= 1


@needs_raw
@requires_data("avmnist_multibench_sample")
def test_images_match_the_widely_used_avmnist_files(tmp_path: Path) -> None:
    """The public .npy images are 4-component centred reconstructions: ours agree per image."""
    folder, meta = build(DATA_ROOT, AVMNISTRecipe(limit=200), tmp_path)
    ours = np.load(folder / "image.npy")[-200:]  # the first 200 MNIST test images
    theirs = np.load(DATA_ROOT / "avmnist_multibench_sample" / "img_test.npy")
    corr = [np.corrcoef(a, b)[0, 1] for a, b in zip(ours, theirs)]
    assert np.mean(corr) > 0.95
    other, _ = build(DATA_ROOT, AVMNISTRecipe(limit=200, pca_components=10), tmp_path)
    corr10 = [np.corrcoef(a, b)[0, 1] for a, b in zip(np.load(other / "image.npy")[-200:], theirs)]
    assert np.mean(corr10) < 0.85  # the component count is identifiable, not any reconstruction fits


@pytest.mark.slow
@needs_raw
def test_build_is_deterministic_and_cached(tmp_path: Path) -> None:
    a, meta_a = build(DATA_ROOT, SMALL, tmp_path / "a")
    again, meta_again = build(DATA_ROOT, SMALL, tmp_path / "a")
    b, meta_b = build(DATA_ROOT, SMALL, tmp_path / "b")
    assert not meta_a["reused"] and meta_again["reused"] and a == again
    assert meta_a["key"] == meta_b["key"] == cache_key(DATA_ROOT, SMALL)
    assert meta_a["content_sha256"] == meta_b["content_sha256"]
    assert meta_a["build_seconds"] > 0 and meta_b["sizes"] == {"train": 300, "val": 300, "test": 300}
    # another recipe is another key, another folder, other bytes
    c, meta_c = build(DATA_ROOT, AVMNISTRecipe(limit=300, seed=1), tmp_path / "a")
    assert c != a and meta_c["content_sha256"] != meta_a["content_sha256"]
    # a damaged cache is not trusted: it is rebuilt
    (a / "meta.json").write_text("{")
    _, meta_fixed = build(DATA_ROOT, SMALL, tmp_path / "a")
    assert not meta_fixed["reused"] and meta_fixed["content_sha256"] == meta_a["content_sha256"]
    assert json.loads((a / "meta.json").read_text())["key"] == meta_a["key"]
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".avmnist-build")]  # no leftovers


@needs_raw
def test_noise_level_controls_the_audio(tmp_path: Path) -> None:
    clean, _ = build(DATA_ROOT, AVMNISTRecipe(limit=100, snr_db=40.0), tmp_path)
    noisy, _ = build(DATA_ROOT, AVMNISTRecipe(limit=100, snr_db=-10.0), tmp_path)
    a, b = np.load(clean / "audio.npy").astype(float), np.load(noisy / "audio.npy").astype(float)
    # the same take, different noise: the clean spectrograms vary more over time
    assert a.std(axis=2).mean() > 1.2 * b.std(axis=2).mean()
    np.testing.assert_array_equal(np.load(clean / "image.npy"), np.load(noisy / "image.npy"))


@needs_raw
def test_missing_recording_is_named_with_the_download_command(tmp_path: Path) -> None:
    root = _mirror(tmp_path)
    (root / "fsdd" / "recordings" / "7_theo_12.wav").unlink()
    with pytest.raises(DataError, match=r"missing fsdd/recordings/7_theo_12.wav .*mmrefine data download fsdd"):
        build(root, SMALL, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


@needs_raw
def test_truncated_wav_and_corrupt_mnist_are_reported(tmp_path: Path) -> None:
    root = _mirror(tmp_path)
    target = root / "fsdd" / "recordings" / "3_jackson_5.wav"
    data = target.read_bytes()
    target.unlink()
    target.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"3_jackson_5.wav: truncated WAV \(header says \d+ samples, file holds \d+\)"):
        build(root, SMALL, tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("avmnist-*"))  # nothing half-built is left as a cache
    target.unlink()
    target.write_bytes(b"RIFF\x00\x00")
    with pytest.raises(DataError, match="not a readable WAV"):
        read_wav(target)
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + (10).to_bytes(4, "big") * 3 + b"\x00" * 10))
    with pytest.raises(DataError, match="header promises"):
        read_idx(bad)
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="corrupt gzip"):
        read_idx(bad)


def test_wav_format_is_checked(tmp_path: Path) -> None:
    p = tmp_path / "stereo.wav"
    with wave.open(str(p), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * 200)
    with pytest.raises(DataError, match="expected mono 16-bit 8000 Hz"):
        read_wav(p)


def test_dft_matrix_and_noise_are_what_they_claim() -> None:
    x = torch.randn(4, 223)
    z = x @ dft_matrix(223)
    ref = torch.fft.rfft(x, n=223)
    torch.testing.assert_close(z[:, :112], ref.real, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(z[:, 112:], ref.imag, atol=1e-3, rtol=1e-4)
    n = pink_noise(1 << 16, 1.0, np.random.default_rng(0))
    assert abs(n.std() - 1) < 1e-3
    p = np.abs(np.fft.rfft(n)) ** 2
    low, high = p[10:100].mean(), p[10_000:20_000].mean()
    assert 50 < low / high < 500  # 1/f: power ratio ~ frequency ratio (~200)


@needs_raw
def test_validation_can_have_its_own_speakers(tmp_path: Path) -> None:
    folder, meta = build(DATA_ROOT, AVMNISTRecipe(limit=300, val_speakers=("lucas",)), tmp_path)
    speaker = np.array([s.split("_")[1] for s in np.load(folder / "recording.npy")])
    assert set(speaker[:300]) == {"jackson", "nicolas", "theo"}
    assert set(speaker[300:600]) == {"lucas"} and set(speaker[600:]) == {"yweweler"}
    digit = np.array([int(s.split("_")[0]) for s in np.load(folder / "recording.npy")])
    np.testing.assert_array_equal(digit, np.load(folder / "label.npy"))


def test_recipe_and_datamodule_validate_their_arguments() -> None:
    with pytest.raises(ConfigError, match="also a training speaker"):
        AVMNISTRecipe(test_speaker="theo")
    with pytest.raises(ConfigError, match=r"validation speakers \['theo'\] are also"):
        AVMNISTRecipe(val_speakers=["theo", "lucas"])
    with pytest.raises(ConfigError, match="pca_components"):
        AVMNISTRecipe(pca_components=0)
    with pytest.raises(ConfigError, match="non-empty subset"):
        AVMNISTDataModule(modalities=["video"])


@needs_raw
def test_datamodule_serves_float_audio_from_the_uint8_cache(tmp_path: Path) -> None:
    dm = AVMNISTDataModule(cache_dir=str(tmp_path), limit=300, modalities=["audio"], settings=DataSettings(batch_size=32))
    dm.setup()
    assert dm.modalities == ["audio"] and [len(dm.splits[s]) for s in ("train", "val", "test")] == [300, 300, 300]
    raw = dm.splits["train"].inputs["audio"]
    assert raw.dtype == torch.uint8
    batch = next(iter(dm.train_dataloader()))
    x = batch.inputs["audio"]
    assert x.dtype == torch.float32 and x.shape == (32, 112, 112) and 0 <= x.min() and x.max() <= 1
    torch.testing.assert_close(decode(raw[:2]), raw[:2].float() / 255)
    assert len(list(tmp_path.glob(f"avmnist-{dm.meta['key'][:16]}/meta.json"))) == 1


@pytest.mark.slow
def test_fusion_beats_each_modality_after_one_epoch(full_build: tuple[Path, dict], tmp_path: Path) -> None:
    """Real learning on the calibrated build (one epoch over the 55,000 training samples):
    neither modality alone suffices and fusion clearly helps. (With a few labels the audio
    model memorises the 150 training takes and stays at chance on the held-out speaker.)"""
    from mmrefine.config import load_config
    from mmrefine.training.engine import fit

    folder, _ = full_build
    config = Path(__file__).resolve().parents[2] / "configs" / "avmnist.yaml"
    acc = {}
    for mods in (["image"], ["audio"], ["image", "audio"]):
        cfg = load_config(config, [f"data.cache_dir={folder.parent}", "trainer.max_epochs=1",
                                   f"run_dir={tmp_path / '-'.join(mods)}", "trainer.progress_bar=false",
                                   f"data.modalities=[{','.join(mods)}]", "trainer.num_sanity_val_steps=0",
                                   *[f"model.encoders.{m}=null" for m in ("image", "audio") if m not in mods]])
        acc["+".join(mods)] = fit(cfg, overwrite=True).test["test/acc"]
    assert 0.3 < acc["image"] < 0.8 and 0.15 < acc["audio"] < 0.8, acc
    assert acc["image+audio"] > max(acc["image"], acc["audio"]) + 0.05, acc


@needs_raw
def test_cli_builds_reuses_and_rejects_unknown_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mmrefine.cli import main

    args = ["data", "build", "avmnist", "--data-root", str(DATA_ROOT), "--cache-dir", str(tmp_path), "--set", "limit=50"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert not first["reused"] and second["reused"] and first["content_sha256"] == second["content_sha256"]
    assert first["sizes"] == {"train": 50, "val": 50, "test": 50}
    assert main([*args, "--set", "colour=pink"]) != 0
    assert "KEY one of" in capsys.readouterr().err


@requires_data("mnist")
def test_export_to_the_multibench_layout_round_trips_through_the_npy_loader(tmp_path: Path, capsys) -> None:
    from mmrefine.cli import main
    from mmrefine.data import AVMNISTNpyDataModule

    out = tmp_path / "mb"
    assert main(["data", "export", "avmnist", str(out), "--layout", "multibench", "--data-root", str(DATA_ROOT),
                 "--cache-dir", str(tmp_path / "cache"), "--set", "limit=120"]) == 0
    info = json.loads(capsys.readouterr().out)
    ours = AVMNISTDataModule(cache_dir=str(tmp_path / "cache"), limit=120, settings=DataSettings(root=str(DATA_ROOT))).splits
    theirs = AVMNISTNpyDataModule(val_size=info["val (last training rows)"], settings=DataSettings(root=str(out))).splits
    for split in ("train", "val", "test"):
        assert torch.allclose(theirs[split].inputs["image"], ours[split].inputs["image"].reshape(len(ours[split]), -1), atol=1e-6)
        assert torch.equal(theirs[split].inputs["audio"], decode(ours[split].inputs["audio"]).reshape(len(ours[split]), 112, 112))
        assert torch.equal(theirs[split].labels, ours[split].labels)
    # the names MultiBench's get_dataloader opens hold the same arrays
    for split in ("train", "test"):
        assert np.array_equal(np.load(out / "image" / f"{split}_data.npy"), np.load(out / f"img_{split}.npy"))
        assert np.array_equal(np.load(out / "audio" / f"{split}_data.npy"), np.load(out / f"aud_{split}.npy"))
