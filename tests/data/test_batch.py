import pytest
import torch

from mmrefine.core.errors import BatchError
from mmrefine.data import BatchSchema, EpochShuffleSampler, MultimodalBatch, TensorMultimodalDataset, collate_samples

SCHEMA = BatchSchema.from_shapes({"img": (4, 4), "txt": (3,)})


def good(b: int = 2) -> MultimodalBatch:
    inputs = {"img": torch.randn(b, 4, 4), "txt": torch.randn(b, 3)}
    return MultimodalBatch(inputs, {m: torch.ones(b, dtype=torch.bool) for m in inputs}, torch.zeros(b, dtype=torch.long))


def test_valid_batch_passes() -> None:
    b = good()
    assert SCHEMA.validate(b) is b


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b.inputs.update(aud=torch.randn(2, 5)) or b.mask.update(aud=torch.ones(2, dtype=torch.bool)), "unknown modality \\['aud'\\]"),
        (lambda b: (b.inputs.pop("txt"), b.mask.pop("txt")), "missing modality \\['txt'\\]"),
        (lambda b: b.inputs.update(img=torch.randn(2, 5, 4)), "modality 'img': expected per-sample shape \\(4, 4\\), got \\(5, 4\\)"),
        (lambda b: b.inputs.update(txt=torch.ones(2, 3, dtype=torch.long)), "modality 'txt': expected a floating dtype"),
        (lambda b: b.inputs["txt"].__setitem__((1, 0), float("nan")), "modality 'txt': 1 present sample\\(s\\) contain NaN or Inf"),
        (lambda b: b.inputs["img"].__setitem__((0, 0, 0), float("inf")), "modality 'img'.*NaN or Inf"),
        (lambda b: b.mask.update(txt=torch.ones(2)), "mask of 'txt'"),
        (lambda b: setattr(b, "labels", torch.zeros(3, dtype=torch.long)), "labels: expected 2 rows"),
    ],
)
def test_bad_batches_raise_named_errors(mutate, message) -> None:
    b = good()
    mutate(b)
    with pytest.raises(BatchError, match=message):
        SCHEMA.validate(b)


def test_nan_in_absent_sample_is_allowed() -> None:
    b = good()
    b.inputs["txt"][1] = float("nan")
    b.mask["txt"][1] = False
    SCHEMA.validate(b)


def test_batch_size_disagreement() -> None:
    with pytest.raises(BatchError, match="disagree on the batch size"):
        MultimodalBatch({"a": torch.zeros(2, 1), "b": torch.zeros(3, 1)}, {})


def test_collate_fills_absent_with_zeros_and_mask() -> None:
    s = [{"a": torch.ones(2), "b": None, "label": 1}, {"a": None, "b": torch.ones(3), "label": 0}]
    batch = collate_samples(s)
    assert batch.mask["a"].tolist() == [True, False] and batch.mask["b"].tolist() == [False, True]
    assert batch.inputs["b"][0].abs().sum() == 0 and batch.inputs["a"].shape == (2, 2)
    assert batch.labels.tolist() == [1, 0]


def test_collate_errors() -> None:
    with pytest.raises(BatchError, match="absent from every sample"):
        collate_samples([{"a": None}])
    with pytest.raises(BatchError, match="sample 1 has shape"):
        collate_samples([{"a": torch.ones(2)}, {"a": torch.ones(3)}])
    with pytest.raises(BatchError, match="unknown modality"):
        collate_samples([{"a": torch.ones(2), "z": torch.ones(1)}], modalities=["a"])


def test_dataset_batched_fetch_matches_per_sample_collation() -> None:
    ds = TensorMultimodalDataset({"a": torch.randn(6, 2), "b": torch.randn(6, 3)}, torch.arange(6))
    idx = [4, 0, 3]
    fast = ds.__getitems__(idx)
    slow = collate_samples([ds[i] for i in idx])
    for m in ("a", "b"):
        assert torch.equal(fast.inputs[m], slow.inputs[m])
    assert torch.equal(fast.labels, slow.labels)


def test_with_missing_zeroes_and_masks() -> None:
    ds = TensorMultimodalDataset({"a": torch.randn(4, 2), "b": torch.randn(4, 3)}, torch.arange(4))
    d = ds.with_missing(["b"])
    assert not d.mask["b"].any() and d.mask["a"].all() and d.inputs["b"].abs().sum() == 0
    assert torch.equal(d.inputs["a"], ds.inputs["a"])
    with pytest.raises(BatchError, match="unknown modality"):
        ds.with_missing(["c"])


def test_epoch_sampler_depends_only_on_seed_and_epoch() -> None:
    s1, s2 = EpochShuffleSampler(20, seed=3), EpochShuffleSampler(20, seed=3)
    s1.set_epoch(5)
    list(s2)  # consuming an epoch must not change later epochs
    s2.set_epoch(5)
    assert list(s1) == list(s2)
    s2.set_epoch(6)
    assert list(s1) != list(s2) and sorted(s2) == list(range(20))


def test_a_tensor_dataset_scans_its_values_once_and_rescans_after_a_change() -> None:
    from mmrefine.data.batch import BatchSchema
    from mmrefine.data.dataset import TensorMultimodalDataset

    x = torch.randn(10, 3)
    ds = TensorMultimodalDataset({"a": x, "b": torch.randn(10, 2)}, torch.zeros(10, dtype=torch.long))
    schema = BatchSchema.from_shapes({"a": (3,), "b": (2,)})
    batch = ds.__getitems__([0, 1, 2])
    assert batch.finite and ds.values_finite()
    x[4, 1] = float("nan")  # in place: the version counter moves, the dataset is scanned again
    assert not ds.values_finite()
    assert not ds.__getitems__([0, 1]).finite and ds.__getitems__([0, 1]).inputs["a"].isfinite().all()
    schema.validate(ds.__getitems__([0, 1]))  # rows without NaN pass
    with pytest.raises(BatchError, match="modality 'a': 1 present sample"):
        schema.validate(ds.__getitems__([3, 4]))
    absent = TensorMultimodalDataset({"a": x, "b": torch.randn(10, 2)}, None, {"a": torch.arange(10) != 4, "b": torch.ones(10, dtype=torch.bool)})
    assert absent.values_finite()  # NaN in an absent sample does not count


def test_moving_a_batch_keeps_its_finite_flag_and_copies_nothing_in_place() -> None:
    from mmrefine.data.batch import MultimodalBatch

    batch = MultimodalBatch({"a": torch.randn(4, 3)}, {"a": torch.ones(4, dtype=torch.bool)}, torch.arange(4), finite=True)
    assert batch.to("cpu") is batch and batch.to(torch.device("cpu")) is batch
    moved = batch.to("meta")
    assert moved is not batch and moved.finite and moved.inputs["a"].device.type == "meta" and moved.labels.device.type == "meta"
    assert not MultimodalBatch({"a": torch.randn(2, 3)}, {"a": torch.ones(2, dtype=torch.bool)}).to("meta").finite
