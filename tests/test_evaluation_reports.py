"""The evaluation functions give Python callers the whole report their command writes:
``fatsr evaluate``'s summary.json, ``fatsr compare``'s page data and ``fatsr lam``'s JSON are
those of :func:`evaluation_report`, :func:`comparison_page` and :func:`lam_report`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from fatsr.cli import main
from fatsr.errors import ArgumentError
from fatsr.evaluation.compare import comparison_page, load_models
from fatsr.evaluation.evaluate import _json_safe
from fatsr.evaluation.lam import Window, lam_report
from fatsr.evaluation.report import evaluation_report, report_files
from fatsr.models.bicubic import BicubicModel

FIXTURES = Path(__file__).resolve().parent / "fixtures"
HR = FIXTURES / "ucmerced" / "val48"
SCENE = FIXTURES / "rasters" / "RGB.byte_crop512.tif"


def test_evaluation_report_is_what_fatsr_evaluate_writes(tmp_path, capsys):
    assert main(["evaluate", str(HR), "--model", "bicubic", "-o", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    report = evaluation_report(HR, model=BicubicModel(4))
    assert json.loads((tmp_path / "summary.json").read_text()) == _json_safe(report.summary)
    assert report.summary["images"] == 2 and report.summary["settings"]["scale"] == 4
    assert printed == f"{report.heading}\n{report.table()}\n"


def test_report_files_refuse_an_existing_file(tmp_path):
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(ArgumentError, match=r"summary.json exists; pass overwrite=True to replace it"):
        report_files(tmp_path)
    assert list(report_files(tmp_path, html=True, overwrite=True)) == ["csv", "json", "html"]


def test_comparison_page_is_the_data_fatsr_compare_writes(tmp_path):
    page = tmp_path / "page.html"
    assert main(["compare", str(SCENE), "--model", "bicubic", "--region-size", "64", "-o", str(page)]) == 0
    written = re.search(r'id="fatsr-data">(.*?)</script>', page.read_text(), re.S)
    assert written is not None
    data = comparison_page([str(SCENE)], load_models(["bicubic"], scale=4, device=torch.device("cpu")), region_size=64)
    written_data, data["scene"]["command"] = json.loads(written.group(1).replace("<\\/", "</")), ""
    written_data["scene"]["command"] = ""  # it names the page's path
    assert written_data == data
    assert [layer["name"] for layer in data["items"][0]["layers"]] == ["LR", "bicubic"]


def test_a_scene_with_hr_images_is_refused_naming_the_argument():
    with pytest.raises(ArgumentError, match=r"give one scene and no hr_files$"):
        comparison_page([str(SCENE)], load_models(["bicubic"], scale=4, device=torch.device("cpu")), hr=str(HR))


def test_lam_report_is_what_fatsr_lam_writes(tmp_path):
    image = HR / "harbor05.png"
    argv = ["lam", str(image), "--model", "bicubic", "--steps", "3", "--window", "8", "8", "16", "-o", str(tmp_path)]
    assert main(argv) == 0
    report = lam_report(image, [BicubicModel(4)], window=Window(8, 8, 16), steps=3)
    report.write(tmp_path / "py.png", tmp_path / "py.json")
    cli, python = (json.loads((tmp_path / name).read_text()) for name in ("harbor05_lam.json", "py.json"))
    for entry in cli["models"] + python["models"]:
        entry.pop("seconds")
    assert cli == python and python["settings"]["window"] == {"x": 8, "y": 8, "size": 16}
