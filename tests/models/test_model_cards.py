"""The model cards, MODEL_CARD.md and README's models table show every built-in model on every
domain split, without and with ``--tta``, as ``scripts/ship_models.py`` writes them from the
shipped files and ``docs/models/domains.json`` (``benchmarks/eval_domains.py``)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from fatsr.models.zoo import builtin_models

REPO = Path(__file__).resolve().parents[2]
DOMAINS = json.loads((REPO / "docs" / "models" / "domains.json").read_text())


@pytest.fixture(scope="module")
def ship_models():
    sys.path.insert(0, str(REPO / "scripts"))  # ship_models imports ship_model beside it
    try:
        spec = importlib.util.spec_from_file_location("ship_models", REPO / "scripts" / "ship_models.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["ship_models"] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("ship_models", None)
        sys.path.remove(str(REPO / "scripts"))


def test_every_model_is_measured_on_every_split_without_and_with_tta(ship_models):
    measured = {(f["row"], f["split"], f["tta"]) for f in DOMAINS["figures"] if f["lr"] == "clean"}
    rows = [*builtin_models(), *ship_models.OWN_WEIGHTS.values()]
    assert set(builtin_models()) >= set(ship_models.BY_NAME)
    missing = {(row, split, tta) for row in rows for split in DOMAINS["splits"] for tta in (False, True)} - measured
    assert not missing and len(DOMAINS["splits"]) == 3


@pytest.mark.parametrize("name", ["fatsr-x4", "fatsr-real-x4", "fatsr-x2"])
def test_a_cards_domain_section_is_what_ship_models_writes(ship_models, name):
    card = (REPO / "docs" / "models" / f"{name}.md").read_text()
    section = "\n".join(ship_models.domain_section(ship_models.BY_NAME[name], DOMAINS))
    assert section + "\n\n## Licence" in card
    figure = ship_models.figure(DOMAINS, name, "sentinel2-10m", True)
    assert f"| `{name} --tta`" in section and ship_models.psnr_cell(figure) in section


def test_readme_and_model_card_tables_are_what_ship_models_writes(ship_models):
    table = ship_models.readme_table(ship_models.records(), DOMAINS)
    readme = (REPO / "README.md").read_text()
    start, end = (readme.index(marker) for marker in ship_models.MARKERS)
    assert readme[start + len(ship_models.MARKERS[0]) : end] == f"\n{table}\n"
    assert table in (REPO / "MODEL_CARD.md").read_text()
    header = table.splitlines()[0]
    assert all(split["label"] in header for split in DOMAINS["splits"].values())
