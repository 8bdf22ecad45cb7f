"""Documentation users can follow: every public constructor argument documented,
papers cited by name (docs/references.md), not by our internal file numbers."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from mmrefine.data import DATASETS
from mmrefine.encoders import ENCODERS
from mmrefine.fusion import FUSIONS
from mmrefine.losses import REFINER_LOSSES, MultiSimilarityLoss
from mmrefine.models import ARCHITECTURES, FusionModel, MLPHead
from mmrefine.refine import ProgressiveFusion, Refiner
from mmrefine.training.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = [reg.get(n) for reg in (ENCODERS, FUSIONS, ARCHITECTURES, REFINER_LOSSES, DATASETS, TASKS) for n in reg.names()]
PUBLIC += [Refiner, ProgressiveFusion, FusionModel, MLPHead, MultiSimilarityLoss]


def documented_args(cls: type) -> set[str]:
    doc = inspect.getdoc(cls) or ""
    section = re.search(r"^Args:\n(.*?)(?:\n\S|\Z)", doc, re.S | re.M)
    return set(re.findall(r"^    (\w+):", section.group(1), re.M)) if section else set()


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda c: c.__name__)
def test_every_constructor_argument_is_documented(cls: type) -> None:
    params = [
        name for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    missing = [p for p in params if p not in documented_args(cls)]
    assert not missing, f"{cls.__module__}.{cls.__name__}: Args: lacks {missing}"


def test_papers_are_cited_by_name_and_listed_in_references() -> None:
    pattern = re.compile(r"\bseeds? 00\d|shared/seeds", re.I)
    hits = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in [*ROOT.glob("mmrefine/**/*.py"), *ROOT.glob("configs/**/*.yaml"), *ROOT.glob("docs/*.md"),
                  *ROOT.glob("benchmarks/*.py"), ROOT / "README.md"]
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, hits
    refs = (ROOT / "docs" / "references.md").read_text()
    for name in ("Sankaran", "Shankar", "Guo", "Rodr", "@inproceedings{shankar2022progressive"):
        assert name in refs
