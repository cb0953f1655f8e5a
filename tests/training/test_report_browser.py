"""The report as a reader sees it: `valuecube compare` writes it, headless Chromium at 1,400 px.

Checks what a reader would notice: the verdict comes first, every image
loads, and no table or image runs off the page. Keeps a full-page screenshot
in tests/artifacts/report.png (git-ignored) and the first screen in
``$VC_SCREENSHOT`` when set (``VC_SCREENSHOT=docs/report_screenshot.png``
refreshes the README's). Chromium and chromedriver come from apt (`make test`
installs them when missing).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from valuecube.cli import app

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
WIDTH = 1400

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="chromium + chromedriver not installed (make test installs them)",
    ),
]

OVERFLOW = """
const limit = document.documentElement.clientWidth;
const boxes = [...document.images, ...document.querySelectorAll('table')].map(el => {
  const box = el.closest('.scroll') || el;
  return [el.tagName + ' ' + (el.alt || el.rows[0]?.innerText.slice(0, 40)),
          Math.round(box.getBoundingClientRect().right)];
});
return {limit: limit, page: document.documentElement.scrollWidth,
        over: boxes.filter(([, right]) => right > limit)};
"""


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
        "--hide-scrollbars",
        f"--window-size={WIDTH},1000",
    ):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_report_reads_in_chromium(telco_model, tmp_path: Path, browser) -> None:
    report = tmp_path / "report.html"
    args = ["compare", "--model", telco_model.model_uri, "--output", str(report)]
    args += ["--max-rows", "400", "--repeats", "1", "--top", "5", "--bootstrap", "50"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Targeting retention by churn risk: use the" in result.output
    printed = dict(re.findall(r"^\s*(churn ROC-AUC · .+?)\s{2,}(\S+)\s*$", result.output, re.M))
    assert len(printed) == 4, result.output

    browser.get(report.as_uri())
    assert browser.execute_script("return window.innerWidth") == WIDTH
    first = browser.execute_script("return document.querySelector('main').firstElementChild.id")
    assert first == "verdict"
    verdict = browser.find_element("id", "verdict").text
    for decision in ("Targeting retention", "Allocating resources", "Forecasting value"):
        assert decision in verdict
    assert "95 % CI" in verdict

    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0])"
    )
    assert len(images) >= 8
    assert all(ok for _, ok in images), [alt for alt, ok in images if not ok]

    layout = browser.execute_script(OVERFLOW)
    assert layout["page"] <= layout["limit"], layout
    assert not layout["over"], layout

    text = browser.find_element("tag name", "body").text
    for label, value in printed.items():
        assert label.removeprefix("churn ") in text and value in text, (label, value)

    ARTIFACTS.mkdir(exist_ok=True)
    if os.environ.get("VC_SCREENSHOT"):
        assert browser.save_screenshot(os.environ["VC_SCREENSHOT"])
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(WIDTH, height + 150)
    assert browser.save_screenshot(str(ARTIFACTS / "report.png"))
