"""``ktg report``'s pages in a real browser: Debian's chromium, headless, driven through its
chromedriver (Selenium). Each page is loaded from its file; the slider is moved with the
keyboard, the edges' computed styles and the page's text are read back, and a screenshot is
checked to be a drawn graph (mostly not white, with the edges' own colours in it; no error
page). The pages of a real quickstart run, a real study and a real search are made by the
``ktg`` command itself. Skipped (with the reason) where chromium or chromedriver is missing:
``bash scripts/install.sh --browser`` installs both; CI does."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run_ktg
from tests.reportfiles import fake_run

pytestmark = [pytest.mark.slow, pytest.mark.browser]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
# a folder to keep the screenshots in, to look at them (by default they go with tmp_path)
SHOTS = Path(os.environ["KTG_REPORT_SHOTS"]) if os.environ.get("KTG_REPORT_SHOTS") else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # CI installs the browser (.ci/run sets KTG_REQUIRE_BROWSER): there a missing one fails
    missing = pytest.fail if os.environ.get("KTG_REQUIRE_BROWSER") else pytest.skip
    if not CHROMIUM or not DRIVER:
        missing("no chromium/chromedriver on PATH: bash scripts/install.sh --browser")
    try:
        from selenium import webdriver
    except ImportError:
        missing("selenium is not installed (the dev extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1100",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)  # fmt: skip
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def load(driver: Any, page: Path) -> None:
    """Open the page from its file; its script has run and logged no error."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(page.resolve().as_uri())
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.body.getAttribute('data-ready')") == "1"
    )
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


EDGE_STYLE = """
const g = document.getElementById(arguments[0]);
const p = g.querySelector('path');
const s = getComputedStyle(p);
return [s.stroke, parseFloat(s.strokeWidth), parseFloat(getComputedStyle(g).opacity)];
"""


def edge(driver: Any, key: str) -> tuple[str, float, float]:
    stroke, width, opacity = driver.execute_script(EDGE_STYLE, f"edge:{key}")
    return stroke, width, opacity


def text_of(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def rgb(css: str) -> tuple[int, int, int]:
    r, g, b = (int(float(v)) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return r, g, b


def screenshot(driver: Any, file: Path, edge_colors: list[str]) -> None:
    """A drawn page: mostly not white, and the edges' own colours are in it."""
    import numpy as np
    from PIL import Image

    driver.save_screenshot(str(file))
    pixels = np.asarray(Image.open(file).convert("RGB")).reshape(-1, 3).astype(int)
    ink = float((pixels.min(axis=1) < 235).mean())
    assert ink > 0.04, f"{file}: {ink:.1%} of the page is drawn"
    for color in edge_colors:
        near = int((np.abs(pixels - np.array(rgb(color))).sum(axis=1) < 40).sum())
        assert near > 40, f"{file}: the edge colour {color} shows in {near} pixels"
    if SHOTS is not None:
        shutil.copy(file, SHOTS / file.name)


@pytest.fixture(scope="module")
def fake_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ktg_dsl.cli import main

    folder = tmp_path_factory.mktemp("fake")
    run = fake_run(folder / "run")
    assert main(["report", str(run), "-o", str(folder / "run.html")]) == 0
    return folder / "run.html"


def test_the_slider_restyles_the_edges(browser: Any, fake_page: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    load(browser, fake_page)
    slider = browser.find_element(By.ID, "epoch")
    assert text_of(browser, "#epoch-label") == "epoch 3 of 3"  # it opens at the last epoch
    opened = edge(browser, "b->a")
    slider.send_keys(Keys.HOME)
    assert text_of(browser, "#epoch-label") == "epoch 1 of 3"
    closed = edge(browser, "b->a")
    # the b -> a gate: weight 0 at epoch 1 (a thin, faint line), 1 at epoch 3
    assert closed[1] == pytest.approx(0.6) and closed[2] == pytest.approx(0.12)
    assert opened[1] == pytest.approx(5.6) and opened[2] == pytest.approx(1.0)
    row = text_of(browser, '#edge-table tr[data-edge="b->a"]')
    assert row.split()[:3] == ["b->a", "positive_linear", "0.000"], row
    assert "val 60.0%" in text_of(browser, "svg.graph")  # the nodes' accuracy at epoch 1
    slider.send_keys(Keys.ARROW_RIGHT)
    assert text_of(browser, "#epoch-label") == "epoch 2 of 3"
    assert closed[1] < edge(browser, "b->a")[1] < opened[1]
    slider.send_keys(Keys.END)
    assert edge(browser, "b->a") == opened
    labels_b, a_b = edge(browser, "labels->b"), edge(browser, "a->b")
    assert labels_b[0] != a_b[0]  # most of b's loss against a little: other colours
    screenshot(browser, tmp_path / "report-fake.png", [labels_b[0], opened[0]])


# in the page: every text the epoch label shows, as it shows it (the test's own polls could
# miss one: the player moves on every 450 ms while a busy machine may keep the test waiting)
RECORD_THE_LABEL = """
const label = document.getElementById('epoch-label');
const seen = window.labelsSeen = [label.textContent];
new MutationObserver(function () {
  if (seen[seen.length - 1] !== label.textContent) { seen.push(label.textContent); }
}).observe(label, {childList: true, characterData: true, subtree: true});
"""
PLAYED = (
    "return labelsSeen.length > 1 && document.getElementById('play').textContent.includes('play')"
)


def test_play_runs_through_the_epochs(browser: Any, fake_page: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    load(browser, fake_page)
    browser.execute_script(RECORD_THE_LABEL)
    play = browser.find_element(By.ID, "play")
    play.click()  # at the last epoch: starts again from the first
    WebDriverWait(browser, 10, poll_frequency=0.05).until(  # it started, and it stopped
        lambda d: d.execute_script(PLAYED)
    )
    seen = browser.execute_script("return window.labelsSeen")
    assert seen == ["epoch 3 of 3", "epoch 1 of 3", "epoch 2 of 3", "epoch 3 of 3"]


def test_an_edge_shows_its_numbers_on_hover(browser: Any, fake_page: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    load(browser, fake_page)
    # the arrowhead: a path's middle may be off its curve
    head = browser.find_element(By.CSS_SELECTOR, '[id="edge:labels->b"] polygon')
    ActionChains(browser).move_to_element(head).perform()
    tip = browser.find_element(By.ID, "tip")
    assert tip.is_displayed()
    assert "labels->b" in tip.text and "weight 1.000" in tip.text and "% of b's loss" in tip.text


@pytest.fixture(scope="module")
def real_pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``ktg report`` on a real quickstart run, a real study and a real search (short)."""
    folder = tmp_path_factory.mktemp("real")
    specs = ROOT / "specs"
    fast = ("--threads", "1", "--set", "train.epochs=3")
    steps = {
        "run": [("train", specs / "quickstart.yaml", *fast, "--run-dir", folder / "run",
                 "--no-progress", "--report")],
        "study": [("study", specs / "study/independent.yaml", specs / "study/dml.yaml",
                   "--seeds", "2", *fast, "-o", folder / "study")],
        "search": [("search", specs / "quickstart-search.yaml", "--trials", "4", *fast)],
    }  # fmt: skip
    pages = {}
    for kind, commands in steps.items():
        for args in commands:
            done = run_ktg(*args, cwd=folder)
            assert done.returncode == 0, done.stderr[-2000:]
        # the search by its folder (runs/<name>/search), from another folder than the one it
        # ran in: its trials' run folders are found beside the journal
        search = folder / "runs" / "quickstart-search" / "search"
        source = {"run": folder / "run", "study": folder / "study", "search": search}[kind]
        target = folder / f"{kind}.html"
        done = run_ktg("report", source, "-o", target, cwd=tmp_path_factory.mktemp("elsewhere"))
        assert done.returncode == 0, done.stderr[-2000:]
        pages[kind] = target
    pages["live"] = folder / "run" / "report.html"
    return pages


def test_a_real_run_page(browser: Any, real_pages: dict[str, Path], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    for name in ("run", "live"):  # ktg report's page, and the one --report kept
        load(browser, real_pages[name])
        assert text_of(browser, "h1") == "quickstart"
        slider = browser.find_element(By.ID, "epoch")
        last = edge(browser, "labels->cnn_a")
        slider.send_keys(Keys.HOME)
        first = edge(browser, "labels->cnn_a")
        assert first[0] != last[0]  # the labels' share of cnn_a's loss changed: its colour
        assert len(browser.find_elements(By.CSS_SELECTOR, "#edge-table tbody tr")) == 9
        screenshot(browser, tmp_path / f"report-{name}.png", [first[0]])


def test_a_real_study_page(browser: Any, real_pages: dict[str, Path], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    load(browser, real_pages["study"])
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.graph")) == 2
    rows = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert len(rows) == 8  # 2 specs x (3 nodes + the graph mean)
    color = browser.execute_script(
        "return getComputedStyle(document.querySelector('[id=\"s1-edge:labels->a\"] path')).stroke"
    )
    screenshot(browser, tmp_path / "report-study.png", [color])
    buttons = browser.find_elements(By.CSS_SELECTOR, "button.open-run")
    assert len(buttons) == 4
    buttons[-1].click()
    browser.switch_to.frame(browser.find_element(By.ID, "run-frame"))
    try:
        WebDriverWait(browser, 20).until(
            lambda d: d.execute_script("return document.body.getAttribute('data-ready')") == "1"
        )
        assert text_of(browser, "h1") == "study-dml"
        assert browser.find_element(By.CSS_SELECTOR, "svg.graph").is_displayed()
    finally:
        browser.switch_to.default_content()


def test_a_real_search_page(browser: Any, real_pages: dict[str, Path], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    load(browser, real_pages["search"])
    assert browser.find_elements(By.CSS_SELECTOR, ".side-by-side svg.graph")
    trials = browser.find_elements(By.CSS_SELECTOR, "#trials tbody tr")
    assert len(trials) == 4
    heading = browser.find_element(By.CSS_SELECTOR, "#trials th:first-child")
    heading.click()  # sorts by trial number, descending
    numbers = [
        int(r.text.split()[0]) for r in browser.find_elements(By.CSS_SELECTOR, "#trials tbody tr")
    ]
    assert numbers == [3, 2, 1, 0]
    heading.click()
    numbers = [
        int(r.text.split()[0]) for r in browser.find_elements(By.CSS_SELECTOR, "#trials tbody tr")
    ]
    assert numbers == [0, 1, 2, 3]
    assert "edge cnn_a<-" in text_of(browser, "#choices")
    # the most opaque edge of the best graphs (the sampler's choices differ from run to run:
    # the first edge may be one its gate closed, drawn at opacity 0.12, too faint to find)
    stroke = browser.execute_script(
        "const gs = [...document.querySelectorAll('.side-by-side g.edge')];"
        "const g = gs.reduce((a, b) =>"
        "  +getComputedStyle(b).opacity > +getComputedStyle(a).opacity ? b : a);"
        "g.scrollIntoView({block: 'center'});"
        "return getComputedStyle(g.querySelector('path')).stroke"
    )
    screenshot(browser, tmp_path / "report-search.png", [stroke])
    browser.find_element(By.CSS_SELECTOR, "button.open-run").click()  # the best trial's run
    browser.switch_to.frame(browser.find_element(By.ID, "run-frame"))
    try:
        WebDriverWait(browser, 20).until(
            lambda d: d.execute_script("return document.body.getAttribute('data-ready')") == "1"
        )
        assert text_of(browser, "h1") == "quickstart-search"
        assert browser.find_elements(By.CSS_SELECTOR, "#edge-table tbody tr")
    finally:
        browser.switch_to.default_content()
