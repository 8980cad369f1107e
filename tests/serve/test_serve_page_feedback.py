"""The chat page's rating buttons and correction box, driven from the keyboard in headless Chromium against a
real `ragtune serve --feedback-db`; what they send is read back from the SQLite file."""

from __future__ import annotations

import sqlite3

import pytest
from browser import ask, browser_session, wait_ready
from serve_helpers import API_KEY

QUESTION = "Who founded Brightwater?"


@pytest.fixture(scope="module")
def fb_page_server(chatty_generator, index_dir, module_tmp):
    from serve import start_server

    db = module_tmp("page_feedback") / "fb.db"
    handle = start_server(
        chatty_generator,
        index_dir,
        api_key=API_KEY,
        extra_args=["--max-tokens-cap", "16", "--poll-interval", "0", "--feedback-db", str(db)],
    )
    try:
        yield handle, db
    finally:
        handle.stop()


browser = pytest.fixture(scope="module", name="browser")(browser_session)


def _rows(db):
    with sqlite3.connect(db) as c:
        return c.execute(
            "SELECT f.rating, f.correction, a.question, a.answer FROM feedback f JOIN answers a "
            "ON a.id = f.response_id ORDER BY f.id"
        ).fetchall()


def _wait_status(driver, turn, start: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    status = turn.find_element(By.CSS_SELECTOR, ".feedback-status")
    WebDriverWait(driver, 60).until(lambda d: status.text and status.text != "sending…")
    assert status.text.startswith(start), status.text
    return status.text


def test_rating_and_correcting_an_answer_from_the_keyboard(browser, fb_page_server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    handle, db = fb_page_server
    browser.get(handle.url + "/")
    wait_ready(browser)

    turn = ask(browser, API_KEY, QUESTION)
    answer = turn.find_element(By.CSS_SELECTOR, ".text").get_property("textContent")  # unnormalised
    box = turn.find_element(By.CSS_SELECTOR, ".feedback")
    assert box.is_displayed()
    down = turn.find_element(By.CSS_SELECTOR, ".rate-down")
    correction = turn.find_element(By.CSS_SELECTOR, ".correction-text")
    assert not correction.is_displayed()
    # from the question box, Shift+Tab walks back into the answer: the last stop before it is "Wrong"
    # once the sources are passed (each source's summary is a stop)
    stops = len(turn.find_elements(By.CSS_SELECTOR, ".sources summary"))
    ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.TAB * (stops + 1)).key_up(Keys.SHIFT).perform()
    assert browser.switch_to.active_element == down
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    assert down.get_attribute("aria-pressed") == "true"
    assert correction.is_displayed() and browser.switch_to.active_element == correction
    ActionChains(browser).send_keys("Mara Quill", Keys.ENTER).perform()
    assert "with your correction" in _wait_status(browser, turn, "Thank you")
    assert _rows(db) == [("down", "Mara Quill", QUESTION, answer)]

    browser.find_element(By.ID, "clear").click()  # a new conversation: the tiny model's context is short
    second = ask(browser, API_KEY, QUESTION)  # the up button, with the space bar
    up = second.find_element(By.CSS_SELECTOR, ".rate-up")
    browser.execute_script("arguments[0].focus()", up)
    ActionChains(browser).send_keys(Keys.SPACE).perform()
    assert _wait_status(browser, second, "Thank you").startswith("Thank you: saved as right")
    assert up.get_attribute("aria-pressed") == "true"
    assert [r[:2] for r in _rows(db)] == [("down", "Mara Quill"), ("up", None)]


def test_no_buttons_where_the_server_stores_no_feedback(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    wait_ready(browser)
    turn = ask(browser, API_KEY, QUESTION)
    assert turn.find_element(By.CSS_SELECTOR, ".text").text.strip()
    assert not turn.find_element(By.CSS_SELECTOR, ".feedback").is_displayed()
