"""Committed reports regenerate identically, apart from dates, versions, environment and commits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from golf_audit.render import render
from golf_audit.render.json import validate
from golf_audit.report import audit_tree

REPO = Path(__file__).resolve().parents[1]
EXPECTED = REPO / "tests" / "fixtures" / "report" / "expected"
# When a check's wording changes on purpose, regenerate (from the repository root) with:
REGENERATE = ("for f in markdown:md json:json; do "
              "golf-audit report tests/fixtures/report/tree --recursive --format ${f%:*} "
              "--output tests/fixtures/report/expected/tree.${f#*:}; "
              "for t in track_10min_16mb track_non_record_16mb; do "
              "golf-audit report ../shared/records/$t --recursive --order reports/records_order.txt --format ${f%:*} "
              "--output reports/records_$t.${f#*:}; done; done")
TRACKS = ("track_10min_16mb", "track_non_record_16mb")


def mask_markdown(text: str) -> str:
    # The provenance footer holds the tool version, the date and (single folder) the commit.
    return re.sub(r"^<sub>golf-audit .*</sub>$", "<sub>golf-audit (masked)</sub>", text, flags=re.M)


def mask_json(doc: dict) -> dict:
    doc = json.loads(json.dumps(doc))
    for key in ("date", "environment"):
        doc[key] = "(masked)"
    doc["tool"]["version"] = "(masked)"
    for folder in doc["folders"]:
        folder["commit"] = folder["permalink"] = "(masked)"
    return doc


def regenerate(subject: str, command: str):
    import shlex

    from golf_audit.records.chronology import read_order_file

    argv = shlex.split(command)
    order = read_order_file(Path(argv[argv.index("--order") + 1])) if "--order" in argv else None
    return audit_tree(subject, command=command, order=order)


@pytest.mark.parametrize("fmt", ["markdown", "json"])
def test_fixture_tree_report_regenerates(fmt, monkeypatch) -> None:
    monkeypatch.chdir(REPO)  # the committed report names the tree relative to the repository
    committed = (EXPECTED / ("tree.md" if fmt == "markdown" else "tree.json")).read_text(encoding="utf-8")
    command = json.loads((EXPECTED / "tree.json").read_text(encoding="utf-8"))["command"]
    fresh = render(regenerate("tests/fixtures/report/tree", command), fmt)
    if fmt == "markdown":
        assert mask_markdown(fresh) == mask_markdown(committed), REGENERATE
    else:
        validate(json.loads(committed))
        assert mask_json(json.loads(fresh)) == mask_json(json.loads(committed)), REGENERATE


@pytest.mark.parametrize("name", TRACKS)
def test_records_track_report_regenerates(name, shared_dir, monkeypatch) -> None:
    track = shared_dir / "records" / name
    if not track.is_dir():
        pytest.skip(f"no records/{name} in ../shared")
    monkeypatch.chdir(REPO)
    committed_json = json.loads((REPO / "reports" / f"records_{name}.json").read_text(encoding="utf-8"))
    validate(committed_json)
    subject = committed_json["subject"]
    if not (REPO / subject).resolve().samefile(track):
        pytest.skip(f"the committed report audits {subject}, not {track}")
    report = regenerate(subject, committed_json["command"])
    crashed = [(f.name, r.check_id) for f in report.folders for r in f.results if "crashed" in r.summary]
    assert not crashed, crashed  # every real folder is audited without a check crashing
    assert mask_json(json.loads(render(report, "json"))) == mask_json(committed_json), REGENERATE
    committed_md = (REPO / "reports" / f"records_{name}.md").read_text(encoding="utf-8")
    assert len(committed_md) <= 65_536  # fits a GitHub comment
    assert mask_markdown(render(report, "markdown")) == mask_markdown(committed_md), REGENERATE
