"""The page at ``/`` in a real browser: Debian's headless Chromium, driven by Selenium.

Ask a question, see the answer stream in, click citation 1, and find the quoted answer
highlighted at its exact offsets in the source passage. A screenshot is saved in the
test's temporary folder (never in the repository).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CORPUS
from tests.test_server import QUESTION, Server, build, ok

pytestmark = pytest.mark.usefixtures("cli_fakes")


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "scripts/setup.sh installs Debian's chromium and chromium-driver"
    options = Options()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1280,900"):  # fmt: skip
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


def test_ask_then_open_the_quote_in_its_source(tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    docs = tmp_path / "docs"
    shutil.copytree(CORPUS, docs, ignore=shutil.ignore_patterns("questions.jsonl"))
    server = Server(tmp_path, "--index", str(build(tmp_path, docs)))
    try:
        expected = ok("POST", server.url + "/v1/ask", {"question": QUESTION})
        wait = WebDriverWait(browser, 60)
        browser.get(server.url + "/")
        wait.until(lambda b: "15 documents" in b.find_element(By.ID, "status").text)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#documents li")) == 15

        browser.find_element(By.ID, "question").send_keys(QUESTION)
        browser.find_element(By.ID, "ask").click()
        links = wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "a.citation"))
        answer = browser.find_element(By.ID, "answer")
        assert int(answer.get_attribute("data-tokens") or 0) > 0  # it came as a stream
        assert answer.text == expected["answer"]
        assert len(links) == len(expected["citations"])

        links[0].click()
        mark = wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#source-text mark"))[0]
        first = expected["citations"][0]
        source = (docs / first["doc_id"]).read_text()
        assert mark.text == source[first["quote_start"] : first["quote_end"]]
        assert mark.text == expected["generated"]  # the extractive answer is the quote
        where = browser.find_element(By.ID, "source-where").text
        assert first["doc_id"] in where and f"lines {first['line_start']}-" in where
        browser.save_screenshot(str(tmp_path / "answer-and-quote.png"))
        assert (tmp_path / "answer-and-quote.png").stat().st_size > 10_000
    finally:
        assert server.stop() == 0, server.log.read_text()
