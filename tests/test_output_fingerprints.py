"""The shipped models' outputs through the public commands are byte-identical to those recorded
in tests/fixtures/output-fingerprints.txt (scripts/output_fingerprints.py writes that file; rerun
it there only when a change is meant to alter outputs, and say so)."""

from pathlib import Path

from checks import script

ROOT = Path(__file__).resolve().parent.parent


def _script():
    return script("output_fingerprints")


def test_shipped_model_outputs_are_unchanged():
    recorded = (ROOT / "tests" / "fixtures" / "output-fingerprints.txt").read_text().splitlines()
    assert _script().fingerprints() == recorded


def test_a_json_report_is_fingerprinted_by_its_numbers_only(tmp_path):
    script = _script()
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    a.write_text('{"settings": {"hr": "/x/hr", "scale": 4}, "seconds": 1.5, "mean": {"psnr_y": 30.25}}')
    b.write_text('{"settings": {"hr": "/y/hr", "scale": 4}, "seconds": 9.0, "mean": {"psnr_y": 30.25}}')
    c.write_text('{"settings": {"hr": "/x/hr", "scale": 4}, "seconds": 1.5, "mean": {"psnr_y": 30.26}}')
    assert script.fingerprint(a) == script.fingerprint(b) != script.fingerprint(c)
