"""Headless Chromium (Debian's `chromium` + `chromium-driver`) driven by selenium, for the chat page's test
and the screenshot script (tests/serve/screenshots.py)."""

from __future__ import annotations

import shutil

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver"
WAIT_S = 120


def missing_browser() -> str | None:
    """Why the browser cannot start (None when it can): Debian's chromium and its driver are needed."""
    absent = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if absent:
        return f"{', '.join(absent)} not found: the chat page's browser test needs Debian's chromium; run `{INSTALL}`"
    return None


def start_chromium(width: int = 1200, height: int = 900):
    """A headless Chromium webdriver whose viewport is width x height CSS pixels at scale 1 (a width under
    600 is emulated as a phone: a headless window is never narrower than 500)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--force-device-scale-factor=1",
        "--no-first-run",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )
    return driver


def wait_idle(driver, timeout: float = WAIT_S) -> None:
    """Wait until the page has finished its last request (Send enabled again, no turn streaming)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script(
            "return !document.getElementById('send').disabled && !document.querySelector('.turn.streaming')"
        )
    )


def wait_ready(driver, timeout: float = WAIT_S) -> str:
    """Wait until the header names the served model (the page read /readyz); return the header text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.find_element(By.ID, "server").text.startswith("model "))
    return driver.find_element(By.ID, "server").text


def ask(driver, key: str, question: str, timeout: float = WAIT_S):
    """Type the key and the question, press Enter, wait for the answer; return the last turn element."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = driver.find_element(By.ID, "key")
    field.clear()
    field.send_keys(key)
    box = driver.find_element(By.ID, "question")
    box.send_keys(question, Keys.ENTER)
    wait_idle(driver, timeout)
    return driver.find_elements(By.CSS_SELECTOR, "#log .turn")[-1]


def browser_session():
    """A module fixture's body: one headless Chromium for the module; a missing browser fails, saying what
    to install (CI installs it)."""
    import pytest

    why = missing_browser()
    if why:
        pytest.fail(why)
    driver = start_chromium()
    try:
        yield driver
    finally:
        driver.quit()
