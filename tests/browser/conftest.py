"""Browser tests of the ops console: Debian's ``chromium`` driven by ``selenium`` through
Debian's ``chromedriver`` (``apt-get install chromium chromium-driver``; ``.ci/run`` installs
them), set up by ``localcloud.browser``: Selenium Manager never runs (the driver and the browser
are given by path, ``SE_OFFLINE`` forbids downloads). Without the packages the tests are
skipped with the reason.

``console`` is the whole catalog in a ``LocalCloud`` with its HTTP port (port 0, 127.0.0.1) on
the virtual clock: the test moves time (``console.cloud.advance``) while the page polls.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest


@pytest.fixture(scope="session")
def driver() -> Iterator[Any]:
    from localcloud import browser as chromium

    reason = chromium.missing()
    if reason:
        pytest.skip(reason)
    profile = tempfile.mkdtemp(prefix="opsdeck-chromium-")
    browser = chromium.driver(profile)
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Console:
    cloud: Any
    driver: Any

    @property
    def url(self) -> str:
        return f"{self.cloud.base_url}/_console"

    def open(self, view: str = "application") -> None:
        self.driver.get(f"{self.url}#{view}")
        self.wait_for(lambda d: d.find_element("css selector", "body").get_attribute("data-refreshed"))

    def show(self, view: str) -> None:
        self.driver.find_element("css selector", f'#tabs a[data-view="{view}"]').click()
        self.wait_for(lambda d: d.find_element("id", f"view-{view}").is_displayed())

    def wait_for(self, condition, timeout: float = 15) -> Any:
        """``condition`` true within ``timeout``; an element the page re-rendered meanwhile (stale) or
        has not rendered yet just means "not yet"."""
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(
            self.driver,
            timeout,
            poll_frequency=0.1,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        )
        return wait.until(condition)

    def click(self, selector: str) -> None:
        """Click the element ``selector`` names once it is there (re-finding it if the page re-rendered)."""
        from selenium.common.exceptions import (
            ElementClickInterceptedException,
            NoSuchElementException,
            StaleElementReferenceException,
        )

        def attempt(d: Any) -> bool:
            try:
                d.find_element("css selector", selector).click()
            except (NoSuchElementException, StaleElementReferenceException, ElementClickInterceptedException):
                return False
            return True

        self.wait_for(attempt)

    def css(self, selector: str) -> Any:
        return self.driver.find_element("css selector", selector)

    def errors(self) -> list[dict[str, Any]]:
        return [e for e in self.driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


@pytest.fixture
def console(driver, database_url, redis_url, committed_db, tmp_path) -> Iterator[Console]:
    from localcloud import LocalCloud

    with LocalCloud(
        root=tmp_path / ".opsdeck",
        database_url=database_url,
        redis_url=redis_url,
        virtual_clock=True,
        deploy=False,
        http=True,
    ) as cloud:
        driver.get_log("browser")  # start from a clean browser log
        yield Console(cloud, driver)
        driver.get("about:blank")
