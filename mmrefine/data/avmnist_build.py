"""Build AV-MNIST from MNIST and the Free Spoken Digit Dataset (FSDD).

The published recipe (Vielzeuf et al.), restated in the data README, with the
choices this module makes where the recipe is silent or unavailable:

* **images** — ``x~ = (x - mu) V_k V_k^T`` with ``x`` the 784 pixels / 255,
  ``mu`` and the top-``k`` principal directions ``V_k`` fitted on the 55,000
  training images only; the mean is not added back. ``k = 4`` by default: the
  widely used AV-MNIST image files are, per image, a 4-component reconstruction
  (correlation 0.992 against our 4-component one, measured on the bundled
  sample; 28% of MNIST's pixel variance, i.e. "75% of PCA energy removed").
* **audio** — image ``i`` of digit ``d`` is paired with a recording of ``d``:
  training and validation images with the takes of ``train_speakers``
  (3 x 50 = 150 per digit), test images with ``test_speaker`` (50 per digit),
  cycled through a seeded permutation. Optional, beyond the published recipe:
  ``val_speakers`` (e.g. ``("lucas",)``, FSDD's george and lucas are unused)
  gives validation its own speakers, so validation measures generalisation to
  new voices as the test split does. The waveform ``s`` (int16 / 32768) is
  mixed with seeded pink (1/f) noise ``n`` cut from a random offset of a long
  noise bank and scaled to a fixed signal-to-noise ratio:
  ``s + rms(s) 10^(-snr_db / 20) n / rms(n)``. The original environmental-noise
  corpus is unavailable; ``snr_db`` is calibrated (docs/datasets.md) so one
  modality alone is far from sufficient.
* **spectrogram** — boxcar window of ``n_fft = 223`` samples, ``frames = 112``
  windows whose hop ``(L - n_fft) / (frames - 1)`` depends on the recording
  length ``L`` so every recording gives exactly 112 frames; magnitude of the
  223-point FFT (112 bins); in dB, clipped to the top ``top_db`` below each
  spectrogram's maximum and stored as uint8 ``(freq, time) = (112, 112)``.
* **split** — MNIST train rows 0-54,999 train, 55,000-59,999 validation,
  the 10,000 MNIST test rows test.

Everything is vectorised: each take's clean frames are transformed once (the
DFT is linear); per chunk of samples, the noise frames are gathered from a
strided view of the noise bank and transformed by one matrix product
(:func:`spectrograms`). The result is cached
under ``cache_dir/avmnist-<key>/`` as ``.npy`` files (memory-mappable) plus
``meta.json``; ``key`` hashes the recipe and the input files' contents, and
``meta.json`` (written last, the folder moved into place atomically) marks a
complete build, so a valid cache is reused and a broken one rebuilt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mmrefine.core.errors import ConfigError, DataError
from mmrefine.data.download import FSDD_COUNT, MNIST_FILES, sha256
from mmrefine.data.paths import default_cache_dir, require_data_root
from mmrefine.data.sources import FSDD_RATE, fsdd_files, read_idx, read_wav

FORMAT_VERSION = 2
SPLIT_SIZES = {"train": 55_000, "val": 5_000, "test": 10_000}
ARRAYS = ("image", "audio", "label")


@dataclass(frozen=True)
class AVMNISTRecipe:
    """Every knob of the build; its JSON form (with the inputs' hashes) is the cache key."""

    pca_components: int = 4
    snr_db: float = 2.0
    train_speakers: tuple[str, ...] = ("jackson", "nicolas", "theo")
    test_speaker: str = "yweweler"
    val_speakers: tuple[str, ...] = ()
    n_fft: int = 223
    frames: int = 112
    top_db: float = 80.0
    noise_exponent: float = 1.0
    seed: int = 0
    limit: int | None = None  # build only the first ``limit`` samples of each split (tests, quick looks)

    def __post_init__(self) -> None:
        for name in ("snr_db", "top_db", "noise_exponent"):  # 2 and 2.0 are one recipe, one cache key
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "train_speakers", tuple(self.train_speakers))
        object.__setattr__(self, "val_speakers", tuple(self.val_speakers))
        if not 1 <= self.pca_components <= 784:
            raise ConfigError(f"pca_components must be in [1, 784], got {self.pca_components}")
        if self.n_fft < 2 or self.frames < 2:
            raise ConfigError("n_fft and frames must be at least 2")
        if self.test_speaker in self.train_speakers:
            raise ConfigError(f"test speaker '{self.test_speaker}' is also a training speaker")
        shared = set(self.val_speakers) & {*self.train_speakers, self.test_speaker}
        if shared:
            raise ConfigError(f"validation speakers {sorted(shared)} are also training or test speakers")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be positive, got {self.limit}")

    def as_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["train_speakers"] = list(self.train_speakers)
        d["val_speakers"] = list(self.val_speakers)
        d["format_version"] = FORMAT_VERSION
        return d

    def sizes(self) -> dict[str, int]:
        return {k: min(v, self.limit) if self.limit else v for k, v in SPLIT_SIZES.items()}


def _input_paths(root: Path, recipe: AVMNISTRecipe) -> tuple[list[Path], dict[str, list[Path]]]:
    """The MNIST files and the recordings of each split's speakers."""
    mnist = [root / "mnist" / f for f in MNIST_FILES]
    rec = root / "fsdd" / "recordings"
    groups = {"train": fsdd_files(rec, list(recipe.train_speakers)), "val": fsdd_files(rec, list(recipe.val_speakers)),
              "test": fsdd_files(rec, [recipe.test_speaker])}
    return mnist, groups


def _check_inputs(root: Path, paths: list[Path]) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        names = ", ".join(str(p.relative_to(root)) for p in missing[:4])
        more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        sets = sorted({p.relative_to(root).parts[0] for p in missing})
        how = "; ".join(f"`mmrefine data download {s} --data-root {root}`" for s in sets)
        raise DataError(f"AV-MNIST build: missing {names}{more} under {root}; get them with {how}"
                        + (f" (FSDD has {FSDD_COUNT} recordings)" if "fsdd" in sets else ""))


def cache_key(root: Path, recipe: AVMNISTRecipe) -> str:
    """SHA-256 over the recipe and the contents of every input file it reads."""
    mnist, groups = _input_paths(root, recipe)
    wavs = [p for g in groups.values() for p in g]
    _check_inputs(root, mnist + wavs)
    h = hashlib.sha256(json.dumps(recipe.as_json(), sort_keys=True).encode())
    for p in mnist + wavs:
        h.update(p.name.encode())
        h.update(bytes.fromhex(sha256(p)))
    return h.hexdigest()


# -- images -----------------------------------------------------------------
def pca_degrade(train: np.ndarray, others: list[np.ndarray], k: int) -> list[np.ndarray]:
    """Centred rank-``k`` reconstructions ``(x - mu) V_k V_k^T`` (no mean added back),
    with ``mu`` and ``V_k`` fitted on ``train``; returns float32 arrays for ``[train, *others]``.
    The covariance is accumulated in float32, its eigenvectors found in float64."""
    x = torch.as_tensor(train, dtype=torch.float32)
    mu = x.mean(0)
    xc = x - mu
    cov = (xc.T @ xc).double() / len(x)
    _, vecs = torch.linalg.eigh(cov)  # ascending eigenvalues
    v = vecs[:, -k:].flip(1).float()
    return [(((torch.as_tensor(a, dtype=torch.float32) - mu) @ v) @ v.T).numpy() for a in [train, *others]]


# -- audio ------------------------------------------------------------------
def pink_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with power spectrum ~ 1/f^exponent (0 white, 1 pink, 2 brown)."""
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    x = np.fft.irfft(spec * f ** (-exponent / 2), n)
    return (x / x.std()).astype(np.float32)


def pair_recordings(labels: np.ndarray, rec_digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each label, the index of a recording of that digit: the ``j``-th image of
    digit ``d`` gets the ``(j mod K_d)``-th of a seeded permutation of ``d``'s ``K_d`` recordings."""
    out = np.empty(len(labels), np.int64)
    for d in np.unique(labels):  # ten digits, not a per-sample loop
        pool = rng.permutation(np.flatnonzero(rec_digits == d))
        if len(pool) == 0:
            raise DataError(f"no recording of digit {d}")
        where = np.flatnonzero(labels == d)
        out[where] = pool[np.arange(len(where)) % len(pool)]
    return out


def dft_matrix(n_fft: int) -> torch.Tensor:
    """``(n_fft, 2 * bins)`` real matrix whose product with a frame gives the real
    and imaginary parts of its ``bins = n_fft // 2 + 1`` one-sided DFT coefficients
    (223 is prime, where a matrix product beats the FFT)."""
    bins = n_fft // 2 + 1
    angle = 2 * torch.pi * torch.outer(torch.arange(n_fft, dtype=torch.float64), torch.arange(bins, dtype=torch.float64)) / n_fft
    return torch.cat([torch.cos(angle), -torch.sin(angle)], 1).float()


def spectrograms(
    waves: torch.Tensor,
    lengths: torch.Tensor,
    rec: np.ndarray,
    offsets: np.ndarray,
    noise: torch.Tensor,
    recipe: AVMNISTRecipe,
    out: np.ndarray,
    chunk: int = 1024,
) -> None:
    """Write the uint8 ``(freq, time)`` spectrograms of samples ``rec`` into ``out``.

    ``waves`` (R, Lmax) float recordings zero-padded, ``lengths`` (R,), ``noise`` a
    unit-RMS bank; sample ``i`` mixes recording ``rec[i]`` with ``noise[offsets[i]:]``.
    The DFT is linear, so each recording's clean frames are transformed once and
    each sample only transforms its noise frames: ``X = S[rec] + gain * DFT(noise frames)``.
    """
    n_fft, frames = recipe.n_fft, recipe.frames
    span = torch.clamp(lengths - n_fft, min=0).double() / (frames - 1)
    starts = (torch.arange(frames, dtype=torch.float64)[None] * span[:, None]).long()  # (R, frames)
    dft = dft_matrix(n_fft)
    bins = dft.shape[1] // 2
    padded = torch.nn.functional.pad(waves, (0, n_fft))  # recordings shorter than a frame read zeros
    rows = padded.as_strided((padded.shape[0], padded.shape[1] - n_fft + 1, n_fft), (padded.shape[1], 1, 1))
    clean = rows[torch.arange(len(waves))[:, None], starts] @ dft  # (R, frames, 2 bins)
    rms = torch.sqrt((waves.double() ** 2).sum(1) / lengths.double()).float()
    gain = rms * 10 ** (-recipe.snr_db / 20)
    windows = noise.as_strided((noise.numel() - n_fft + 1, n_fft), (1, 1))
    floor = recipe.top_db / 10
    for lo in range(0, len(rec), chunk):
        r = torch.as_tensor(rec[lo: lo + chunk])
        first = torch.as_tensor(offsets[lo: lo + chunk])[:, None] + starts[r]  # (c, frames)
        z = torch.index_select(windows, 0, first.reshape(-1)).view(len(r), frames, n_fft) @ dft
        z.mul_(gain[r][:, None, None]).add_(clean[r])
        power = z[..., :bins].square_().add_(z[..., bins:].square_()).add_(1e-20).log10_()  # log10 |X|^2 = dB / 10
        power.sub_(power.amax(dim=(1, 2), keepdim=True) - floor).clamp_(min=0).mul_(255.0 / floor)
        out[lo: lo + len(r)] = power.round_().to(torch.uint8).transpose(1, 2).numpy()


def _load_recordings(paths: list[Path]) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    raw = [read_wav(p) for p in paths]  # file I/O, one call per file
    lengths = torch.as_tensor([len(w) for w in raw])
    waves = torch.zeros(len(raw), int(lengths.max()))
    cat = torch.as_tensor(np.concatenate(raw).astype(np.float32) / 32768.0)
    rows = torch.repeat_interleave(torch.arange(len(raw)), lengths)
    cols = torch.arange(len(cat)) - torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
    waves[rows, cols] = cat
    digits = np.array([int(p.name.split("_")[0]) for p in paths])
    return waves, lengths, digits


# -- the build --------------------------------------------------------------
def _valid(folder: Path, key: str) -> dict | None:
    meta_path = folder / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != key:
            return None
        for name in ARRAYS:
            arr = np.load(folder / f"{name}.npy", mmap_mode="r")
            if arr.shape[0] != sum(meta["sizes"].values()):
                return None
        return meta
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None


def content_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for name in ARRAYS:
        h.update(hashlib.sha256((folder / f"{name}.npy").read_bytes()).digest())
    return h.hexdigest()


def build(root: str | Path, recipe: AVMNISTRecipe | None = None, cache_dir: str | Path | None = None,
          force: bool = False) -> tuple[Path, dict]:
    """Build (or reuse) AV-MNIST; returns the cache folder and its metadata.

    ``meta`` holds the recipe, ``key``, split ``sizes`` (rows are train, val, test
    in order), ``build_seconds`` (of the build that made it) and ``reused``.
    """
    recipe = recipe or AVMNISTRecipe()
    root = Path(root)
    key = cache_key(root, recipe)
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = base / f"avmnist-{key[:16]}"
    if not force and (meta := _valid(folder, key)) is not None:
        return folder, {**meta, "reused": True}
    t0 = time.perf_counter()
    sizes = recipe.sizes()
    mnist_files, groups = _input_paths(root, recipe)
    tr_img = read_idx(mnist_files[0]).reshape(-1, 784)
    tr_lab = read_idx(mnist_files[1])
    te_img = read_idx(mnist_files[2]).reshape(-1, 784)
    te_lab = read_idx(mnist_files[3])
    if len(tr_img) != 60_000 or len(te_img) != 10_000 or len(tr_lab) != len(tr_img) or len(te_lab) != len(te_img):
        raise DataError(f"{root / 'mnist'}: expected 60,000 + 10,000 images with as many labels")
    cut = SPLIT_SIZES["train"]
    rows = {"train": np.arange(sizes["train"]), "val": cut + np.arange(sizes["val"]), "test": np.arange(sizes["test"])}
    pixels = [np.float32(1 / 255) * a for a in (tr_img[:cut], tr_img[rows["val"]], te_img[rows["test"]])]
    train_img, val_img, test_img = pca_degrade(pixels[0], pixels[1:], recipe.pca_components)
    images = np.concatenate([train_img[: sizes["train"]], val_img, test_img])
    labels = np.concatenate([tr_lab[rows["train"]], tr_lab[rows["val"]], te_lab[rows["test"]]]).astype(np.int64)

    rng = np.random.default_rng(recipe.seed)
    wavs = [p for g in groups.values() for p in g]
    waves, lengths, digits = _load_recordings(wavs)
    group = np.repeat(np.arange(3), [len(g) for g in groups.values()])  # 0 train, 1 val, 2 test speakers
    ends = np.cumsum([sizes["train"], sizes["val"], sizes["test"]])
    # (images, recordings) to pair; validation shares the training takes unless it has its own speakers
    if recipe.val_speakers:
        parts = [(slice(0, ends[0]), 0), (slice(ends[0], ends[1]), 1), (slice(ends[1], ends[2]), 2)]
    else:
        parts = [(slice(0, ends[1]), 0), (slice(ends[1], ends[2]), 2)]
    rec = np.concatenate([np.flatnonzero(group == g)[pair_recordings(labels[sl], digits[group == g], rng)] for sl, g in parts])
    bank_len = 1 << 21  # 262 s of noise at 8 kHz
    noise = torch.as_tensor(pink_noise(bank_len + waves.shape[1], recipe.noise_exponent, rng))
    offsets = rng.integers(0, bank_len, len(rec))

    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".avmnist-build-", dir=base))
    try:
        np.save(tmp / "image.npy", images)
        np.save(tmp / "label.npy", labels)
        audio = np.lib.format.open_memmap(tmp / "audio.npy", mode="w+", dtype=np.uint8,
                                          shape=(len(rec), recipe.n_fft // 2 + 1, recipe.frames))
        spectrograms(waves, lengths, rec, offsets, noise, recipe, audio)
        audio.flush()
        del audio
        np.save(tmp / "recording.npy", np.array([p.stem for p in wavs])[rec])
        meta = {"key": key, "recipe": recipe.as_json(), "sizes": sizes, "sample_rate": FSDD_RATE,
                "build_seconds": round(time.perf_counter() - t0, 2)}
        meta["content_sha256"] = content_digest(tmp)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder, {**meta, "reused": False}


def recipe_from_settings(settings: list[str]) -> AVMNISTRecipe:
    """An :class:`AVMNISTRecipe` from ``KEY=VALUE`` strings (``--set`` on the command line)."""
    import yaml

    fields = {f.name: f for f in dataclasses.fields(AVMNISTRecipe)}
    kwargs = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with KEY one of {sorted(fields)}")
        kwargs[key] = yaml.safe_load(value)
    return AVMNISTRecipe(**kwargs)


def build_from_cli(data_root: str | None, cache_dir: str | None, settings: list[str], force: bool = False) -> dict:
    """``mmrefine data build avmnist``: ``settings`` are ``KEY=VALUE`` recipe fields."""
    folder, meta = build(require_data_root(data_root, "avmnist"), recipe_from_settings(settings), cache_dir, force)
    return {"folder": str(folder), "reused": meta["reused"], "build_seconds": meta["build_seconds"], "sizes": meta["sizes"],
            "key": meta["key"], "content_sha256": meta["content_sha256"]}


def _link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` becomes a hard link to ``src`` (a copy where the file system refuses links)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    tmp.replace(dst)


def export_multibench(data_root: str | None, out: str | Path, cache_dir: str | None = None, settings: list[str] | None = None) -> dict:
    """Write the built AV-MNIST in the widely used ``.npy`` layout (read by
    ``avmnist_npy``): ``img_{train,test}.npy`` ``(N, 784)`` float32 on the 0-255 scale,
    ``aud_{train,test}.npy`` ``(N, 112, 112)`` uint8, ``{train,test}_labels.npy``
    int64; and the same image and audio files, hard-linked (copied where links are
    impossible), under the names MultiBench's ``get_dataloader`` opens:
    ``image/{train,test}_data.npy`` and ``audio/{train,test}_data.npy``. The training
    files hold our training rows then our validation rows, so "the last ``val``
    training samples" is our validation split; a peer trained on these files sees
    exactly our data."""
    folder, meta = build(require_data_root(data_root, "avmnist"), recipe_from_settings(settings or []), cache_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
    n_train = meta["sizes"]["train"] + meta["sizes"]["val"]
    parts = {"train": slice(0, n_train), "test": slice(n_train, n_train + meta["sizes"]["test"])}
    for split, sel in parts.items():
        files = {f"img_{split}.npy": (np.asarray(arrays["image"][sel], dtype=np.float32) * np.float32(255.0)).reshape(-1, 784),
                 f"aud_{split}.npy": np.asarray(arrays["audio"][sel], dtype=np.uint8).reshape(-1, 112, 112),
                 f"{split}_labels.npy": np.asarray(arrays["label"][sel], dtype=np.int64)}
        for name, arr in files.items():
            tmp = out / f".{name}.part"
            with tmp.open("wb") as f:
                np.save(f, arr)
            tmp.replace(out / name)
        for modality, short in (("image", "img"), ("audio", "aud")):
            _link_or_copy(out / f"{short}_{split}.npy", out / modality / f"{split}_data.npy")
    return {"folder": str(out), "train": n_train, "val (last training rows)": meta["sizes"]["val"], "test": meta["sizes"]["test"],
            "source": str(folder)}
