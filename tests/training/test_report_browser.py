"""A real look at the report: `valuecube compare` writes it, headless Chromium renders it.

Checks that every image decodes (complete and naturalWidth > 0), that the
headline numbers the command printed are in the page text, and keeps a
full-page screenshot in tests/artifacts/report.png (git-ignored). Chromium and
chromedriver come from apt (`make test` installs them when missing).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import ROOT
from typer.testing import CliRunner

from valuecube.cli import app

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="chromium + chromedriver not installed (make test installs them)",
    ),
]


@pytest.fixture()
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--window-size=1280,900",
    ):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(
        service=Service(CHROMEDRIVER), options=options
    )  # local driver: no Selenium Manager
    yield driver
    driver.quit()


def test_report_renders_in_chromium(telco_model, tmp_path: Path, browser) -> None:
    report = tmp_path / "report.html"
    result = CliRunner().invoke(
        app,
        [
            "compare",
            "--model",
            telco_model.model_uri,
            "--output",
            str(report),
            "--max-rows",
            "400",
            "--repeats",
            "1",
            "--top",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    printed = dict(re.findall(r"^\s*(.+?)\s{2,}(\S+)\s*$", result.output, flags=re.MULTILINE))
    assert "segment agreement (accuracy)" in printed and "churn ROC-AUC · BP network" in printed

    browser.get(report.as_uri())
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0])"
    )
    assert len(images) >= 9
    assert all(ok for _, ok in images), [alt for alt, ok in images if not ok]
    text = browser.find_element("tag name", "body").text
    for label, value in printed.items():
        assert label in text and value in text, (label, value)

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, height + 150)
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "report.png"))
