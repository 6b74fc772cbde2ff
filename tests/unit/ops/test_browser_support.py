"""Without Debian's chromium the browser tests skip, saying why (a laptop still runs the suite)."""

from __future__ import annotations

from localcloud import browser


def test_a_missing_browser_is_named_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(browser, "CHROMIUM", str(tmp_path / "chromium"))
    assert browser.missing() == "chromium is not installed (apt-get install -y chromium chromium-driver)"
    monkeypatch.setattr(browser, "CHROMIUM", __file__)
    monkeypatch.setattr(browser, "CHROMEDRIVER", str(tmp_path / "chromedriver"))
    assert "chromium-driver is not installed" in browser.missing()


def test_selenium_manager_is_never_asked(monkeypatch):
    monkeypatch.delenv("SE_OFFLINE", raising=False)
    flags = set(browser.FLAGS)
    assert {"--headless=new", "--no-sandbox", "--disable-background-networking", "--no-first-run"} <= flags
    assert {
        "--disable-component-update",
        "--disable-sync",
        "--disable-gpu",
        "--disable-dev-shm-usage",
    } <= flags
