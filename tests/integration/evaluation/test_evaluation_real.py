"""Evaluation on the real shared data: the 280 pairs, the identities tree, the CLI, and the
HTML report rendered by headless Chromium."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from frvs.app import Application
from frvs.cli.main import app as cli
from frvs.evaluation.datasets import load_identities, load_pairs
from frvs.evaluation.models import IdentificationResult, VerificationResult
from frvs.evaluation.report import write_report
from frvs.evaluation.runner.service import EvaluationService


@pytest.fixture(scope="module")
def service(session_app: Application) -> EvaluationService:
    return EvaluationService(session_app)


@pytest.fixture(scope="module")
def pairs_result(service: EvaluationService, data_dir: Path) -> VerificationResult:
    return service.verification(load_pairs(data_dir / "pairs" / "pairs.csv"))


@pytest.fixture(scope="module")
def identities_result(service: EvaluationService, data_dir: Path) -> IdentificationResult:
    return service.identification(load_identities(data_dir / "identities"))


def test_pairs_accuracy_at_default_threshold(pairs_result: VerificationResult) -> None:
    r = pairs_result
    assert (r.pairs, r.scores.genuine.size, r.scores.impostor.size) == (280, 140, 140)
    assert r.threshold.value == 0.363  # the shipped default, not tuned on this data
    # Recompute accuracy from the raw scores rather than trusting the record.
    same = np.array([True] * 140 + [False] * 140)
    scores = np.concatenate([r.scores.genuine, r.scores.impostor])
    accuracy = float(((scores >= r.threshold.value) == same).mean())
    assert accuracy == pytest.approx(r.decisions.accuracy)
    assert accuracy >= 0.99
    assert r.auc >= 0.99 and r.eer.rate <= 0.02
    at = {p.target_fmr: p for p in r.at_fmr}
    assert at[1e-2].reachable and not at[1e-3].reachable
    assert r.failures == ()  # every shared image has a face
    assert r.intervals["accuracy"].low <= r.decisions.accuracy <= r.intervals["accuracy"].high


def test_identification_rank1(identities_result: IdentificationResult) -> None:
    r = identities_result
    assert r.enrolled == ("alex_lacamoire", "biden", "kit_harington", "obama", "rose_leslie")
    assert r.rank(1) == 1.0
    mated = [s for s in r.searches if s.mated]
    assert len(mated) == 6  # two-face images give two searches each
    assert [e.image.rsplit("/", 1)[-1] for e in r.excluded] == ["johnsnow_test1.jpg"]
    assert r.open_set.fpir is None  # no probe of an unenrolled person in this tree


def test_identification_with_labels_for_every_probe(
    service: EvaluationService, data_dir: Path, tmp_path: Path
) -> None:
    labels = tmp_path / "labels.csv"
    test = data_dir / "identities" / "test"
    rows = [("johnsnow_test1.jpg", "kit_harington"), ("obama1.jpg", "obama"),
            ("obama_and_biden.jpg", "obama"), ("obama_and_biden.jpg", "biden"),
            ("kit_with_rose.jpg", "kit_harington"), ("kit_with_rose.jpg", "rose_leslie"),
            ("alex_lacamoire1.jpg", "alex_lacamoire"), ("obama1.jpg", "stranger")]
    labels.write_text("image,identity\n" + "".join(f"{test / f},{w}\n" for f, w in rows))
    r = service.identification(load_identities(data_dir / "identities", labels))
    assert r.excluded == ()
    assert r.rank(1) == 1.0
    # obama1.jpg has one face, taken by obama: the unenrolled "stranger" gets no face.
    (stranger,) = [s for s in r.searches if s.identity == "stranger"]
    assert not stranger.mated and stranger.top_score is None


def test_cli_verification_json_report_and_groups(data_dir: Path, tmp_path: Path,
                                                 data_path: Path) -> None:
    pairs = tmp_path / "pairs.csv"
    with (data_dir / "pairs" / "pairs.csv").open() as f:
        rows = list(csv.DictReader(f))
    chosen = [r for r in rows if r["same"] == "1"][:6] + [r for r in rows if r["same"] == "0"][:6]
    with pairs.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_a", "image_b", "same", "group"])
        for k, r in enumerate(chosen):
            w.writerow([data_dir / "pairs" / r["image_a"], data_dir / "pairs" / r["image_b"],
                        r["same"], "g1" if k % 2 else "g2"])
    result = CliRunner().invoke(cli, ["eval", "verification", str(pairs), "--json",
                                      "--report", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    for key in ("accuracy", "threshold", "auc", "eer", "fnmr_at_fmr", "failure_to_acquire"):
        assert key in doc
    assert doc["pairs"] == 12
    assert doc["fnmr_at_fmr"]["0.01"]["reachable"] is False  # 6 impostors
    assert {g["group"] for g in doc["groups"]["groups"]} == {"g1", "g2"}
    assert Path(doc["report"]).read_text().startswith("<!DOCTYPE html>")


def test_cli_missing_image_fails_before_work(tmp_path: Path, data_path: Path) -> None:
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("image_a,image_b,same\nnope.jpg,nada.jpg,1\n")
    result = CliRunner().invoke(cli, ["eval", "verification", str(pairs), "--json"])
    assert result.exit_code == 9
    assert json.loads(result.stdout)["error"] == "file_not_found"


@pytest.mark.slow
@pytest.mark.browser
def test_report_opens_in_chromium_with_plots(
    pairs_result: VerificationResult, identities_result: IdentificationResult, tmp_path: Path,
    browser: Any,
) -> None:
    # Side by side: the same data under a second pack name, in one report.
    other = dataclasses.replace(pairs_result,
                                run=dataclasses.replace(pairs_result.run, pack="second"))
    path = write_report(tmp_path, [pairs_result, other], [identities_result])
    text = path.read_text()
    assert "never infers" in text and "not reachable with 140 impostor" in text
    assert "second" in text
    page = browser.new_page()
    try:
        page.goto(path.as_uri())
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.alt, e.complete && e.naturalWidth])")
        title = page.title()
    finally:
        page.close()
    assert title == "FRVS evaluation report"
    alts = {alt for alt, _ in images}
    assert {"ROC", "DET", "CMC", "Score histogram yunet_sface", "Score histogram second"} <= alts
    assert all(width and width > 0 for _, width in images), images


def test_cli_calibrate_writes_the_threshold_evaluation_then_uses(
    data_dir: Path, tmp_path: Path, data_path: Path
) -> None:
    pairs = tmp_path / "cal.csv"
    root = data_dir / "pairs"
    pairs.write_text("image_a,image_b,same\n" + "".join(
        f"{root / a},{root / b},{s}\n" for a, b, s in [
            ("images/img1.jpg", "images/img2.jpg", 1), ("images/img1.jpg", "images/img4.jpg", 1),
            ("images/img1.jpg", "images/img5.jpg", 1), ("images/img1.jpg", "images/img18.jpg", 0),
            ("images/img2.jpg", "images/img18.jpg", 0)]))
    config = tmp_path / "frvs.yaml"
    runner = CliRunner()
    refused = runner.invoke(cli, ["calibrate", str(pairs), "--target-fmr", "1e-3", "--json"])
    assert refused.exit_code == 22 and "not reachable" in json.loads(refused.stdout)["message"]
    done = runner.invoke(cli, ["calibrate", str(pairs), "--target-fmr", "0.5", "--write",
                               str(config), "--as-default", "--json"])
    assert done.exit_code == 0, done.output
    calibration = json.loads(done.stdout)
    assert calibration["fmr"] <= 0.5
    evaluated = runner.invoke(cli, ["--config", str(config), "eval", "verification", str(pairs),
                                    "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    doc = json.loads(evaluated.stdout)
    assert doc["threshold"] == calibration["threshold"]
    assert doc["threshold_source"].startswith("frvs calibrate at FMR 0.5 on")
    assert doc["decisions"]["fmr"] == calibration["fmr"]
