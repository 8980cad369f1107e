"""The chat page at `/`, driven in headless Chromium against a real `ragtune serve` on loopback.

A missing browser is a failure that says what to install, not a skip: CI installs it in .ci/run."""

from __future__ import annotations

import httpx
import pytest
from browser import ask, browser_session, wait_ready
from serve_helpers import API_KEY

QUESTION = "Who founded Brightwater?"
# Counts the changes to answer texts, so that a streamed answer is seen arriving in pieces.
COUNT_TEXT_CHANGES = """
window.textChanges = 0;
new MutationObserver(() => { window.textChanges += 1; })
  .observe(document.getElementById('log'), {subtree: true, childList: true, characterData: true});
"""


browser = pytest.fixture(scope="module", name="browser")(browser_session)


@pytest.fixture
def page(browser, server):
    browser.get(server.url + "/")
    browser.execute_script("sessionStorage.clear(); localStorage.clear();")
    browser.get(server.url + "/")
    wait_ready(browser)
    return browser


def api(server, method: str, path: str, key: str = API_KEY, **kw) -> httpx.Response:
    return httpx.request(
        method, server.url + path, headers={"Authorization": f"Bearer {key}"}, timeout=60, **kw
    )


def test_the_page_is_served_with_a_strict_policy(server):
    r = httpx.get(server.url + "/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    for asset in ("/static/chat.js", "/static/chat.css"):
        assert httpx.get(server.url + asset).status_code == 200
    assert "/" not in httpx.get(server.url + "/openapi.json").json()["paths"]  # not part of the API


def test_keyboard_only_question_streams_an_answer_with_sources_model_and_index(page, server, model_id):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    header = page.find_element(By.ID, "server").text
    version = api(server, "GET", "/v1/index").json()["version"]
    assert model_id in header and version in header

    page.execute_script(COUNT_TEXT_CHANGES)
    keys = ActionChains(page)
    keys.send_keys(Keys.TAB).perform()  # the first stop is the key field
    focused = page.switch_to.active_element
    assert focused.get_attribute("id") == "key"
    assert focused.value_of_css_property("outline-style") == "solid"  # a visible focus ring
    keys = ActionChains(page)
    keys.send_keys(API_KEY, Keys.TAB, Keys.TAB).perform()  # past "remember" to the question
    assert page.switch_to.active_element.get_attribute("id") == "question"
    ActionChains(page).send_keys(QUESTION, Keys.ENTER).perform()

    turn_css = "#log .turn"
    WebDriverWait(page, 120).until(lambda d: d.find_elements(By.CSS_SELECTOR, turn_css + ":not(.streaming)"))
    turn = page.find_element(By.CSS_SELECTOR, turn_css)
    assert turn.find_element(By.CSS_SELECTOR, ".error").get_attribute("hidden")
    answer = turn.find_element(By.CSS_SELECTOR, ".text").text
    assert answer.strip()
    assert page.execute_script("return window.textChanges") > 3  # the answer arrived in pieces

    expected = api(
        server,
        "POST",
        "/v1/chat/completions",
        json={"model": model_id, "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 1},
    ).json()["sources"]
    titles = [e.text for e in turn.find_elements(By.CSS_SELECTOR, ".sources .title")]
    assert titles == [s["title"] for s in expected] and "Founding" in titles
    meta = turn.find_element(By.CSS_SELECTOR, ".meta").text
    assert f"model {model_id}" in meta and f"index {version}" in meta

    # the citation opens from the keyboard and shows the passage's snippet and document id
    first = turn.find_element(By.CSS_SELECTOR, ".sources summary")
    snippet = turn.find_element(By.CSS_SELECTOR, ".sources .snippet")
    assert not snippet.is_displayed()
    page.execute_script("arguments[0].focus()", first)
    ActionChains(page).send_keys(Keys.ENTER).perform()
    assert snippet.is_displayed() and snippet.text == expected[0]["snippet"]
    assert expected[0]["doc_id"] in first.text


def test_a_wrong_key_shows_the_apis_401_message(page, server, model_id):
    from selenium.webdriver.common.by import By

    expected = api(server, "GET", "/v1/models", key="wrong-key")
    assert expected.status_code == 401
    turn = ask(page, "wrong-key", QUESTION)
    error = turn.find_element(By.CSS_SELECTOR, ".error")
    assert error.is_displayed()
    assert error.text == f"401: {expected.json()['error']['message']}"
    assert not turn.find_element(By.CSS_SELECTOR, ".text").text


def test_text_from_the_user_and_the_model_is_never_markup(page):
    from selenium.webdriver.common.by import By

    html = "<img src=x onerror=\"document.title='owned'\"><b>bold</b>"
    turn = ask(page, API_KEY, html)
    question = turn.find_element(By.CSS_SELECTOR, ".question")
    assert question.text == html
    assert not question.find_elements(By.CSS_SELECTOR, "*") and page.title == "ragtune chat"
