"""A headless Chromium for the browser tests: Debian's own browser and driver, driven by
Selenium, one browser for the whole session.

A test module imports the fixtures it uses (`from browser_support import chromium,
browser_artifacts`); pytest then finds them in that module. Screenshots go to
`browser_artifacts`, a folder of the session's temporary directory (or $PESTO_TEST_ARTIFACTS
when CI wants to keep them), never into the repository.
"""

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("PESTO_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PESTO_CHROMEDRIVER", "/usr/bin/chromedriver")
# Quiet and reproducible: no first-run page, no update or sync traffic (the tests reach
# loopback only), no GPU on this machine.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1024",
)
WAIT_SECONDS = 20


def _missing_browser() -> str | None:
    """What is missing to start the browser, said the way to fix it, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() or shutil.which(path)):
            return f"{path} is missing; run `scripts/setup-services` (Debian: chromium, chromium-driver)"
    return None


@pytest.fixture(scope="session")
def chromium(tmp_path_factory) -> Iterator:
    """A headless Chromium (a Selenium WebDriver) shared by the session, quit at its end.

    It starts with a fresh profile folder, so no state leaks in from another run."""
    problem = _missing_browser()
    if problem:
        pytest.fail(problem, pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as ChromeService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    # The executable path stops Selenium Manager from looking for (downloading) a driver.
    driver = webdriver.Chrome(service=ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def browser_artifacts(tmp_path_factory) -> Path:
    """The folder where browser tests save their screenshots (kept after the run, not committed)."""
    chosen = os.environ.get("PESTO_TEST_ARTIFACTS")
    folder = Path(chosen) if chosen else tmp_path_factory.getbasetemp() / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(driver, artifacts: Path, name: str) -> Path:
    """Save what the browser shows as `artifacts/NAME.png`, whole page height included; the
    window gets its size back, so the next test sees the browser as it was."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    size = driver.get_window_size()
    driver.set_window_size(size["width"], max(int(height) + 100, 600))
    path = artifacts / f"{name}.png"
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(size["width"], size["height"])
    return path


def wait_for(driver, condition: Callable, timeout: float = WAIT_SECONDS, message: str = ""):
    """What `condition(driver)` answers once it is truthy; a TimeoutException saying `message`
    when it never is."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition, message)


def rendered_images(driver, css: str = "img") -> list[dict]:
    """Each picture matching `css`: its src (first 80 characters), whether it finished
    loading, and its natural size (0 when the browser could not decode it)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(i => ({"
        "src: (i.currentSrc || i.src || '').slice(0, 80), complete: i.complete,"
        "naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight}));",
        css,
    )
