"""A real browser for the Items tab's tests: Debian's Chromium, headless, driven by Selenium.

Selenium is pointed at the system's browser and driver (``SE_OFFLINE``: its manager never
downloads one), the profile is fresh, and every host name but 127.0.0.1 fails to resolve, so the
browser talks to the test deployment and nothing else.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
MISSING_BROWSER = (
    f"{CHROMIUM} or {CHROMEDRIVER} not found: the Items tab's tests drive a real browser. Install them "
    "with `make system-packages` (Debian packages chromium and chromium-driver)."
)
#: Chromium's own services (updates, safe browsing, translation, ...) stay silent
QUIET_FLAGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-extensions",
    "--disable-client-side-phishing-detection",
    "--disable-domain-reliability",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--password-store=basic",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)

T = TypeVar("T")


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail(MISSING_BROWSER, pytrace=False)
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="items-tab-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-dev-shm-usage", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    for flag in QUIET_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.2) -> T:
    """Poll ``probe`` until it returns something truthy; the last value and error name the failure."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = probe()
        except Exception as exc:  # a page being re-rendered: an element went stale, and so on
            last = f"{type(exc).__name__}: {exc}"
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def log_in(driver: Any, base_url: str, username: str, password: str) -> None:
    """Through SimpleAuthManager's login form, as a person would."""
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(f"{base_url}/auth/login?next=%2F")
    wait_until("the login form", lambda: driver.find_elements(By.NAME, "username"))
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_until(f"{username}'s session cookie", lambda: driver.get_cookie("_token"))


def tab_url(base_url: str, dag_id: str, run_id: str, task_id: str | None = None, map_index: int = -1) -> str:
    """The UI's page of a task instance's (or, without a task, a DAG run's) Items tab."""
    page = f"{base_url}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    if task_id is None:
        return f"{page}/plugin/iterate-run-items"
    page += f"/tasks/{quote(task_id, safe='')}"
    if map_index >= 0:
        page += f"/mapped/{map_index}"
    return f"{page}/plugin/iterate-items"


def open_tab(driver: Any, url: str) -> None:
    """Open a UI page with an Items tab and step into the tab's frame."""
    from selenium.webdriver.common.by import By

    driver.switch_to.default_content()
    driver.get(url)
    frame = wait_until("the Items tab's frame", lambda: driver.find_elements(By.CSS_SELECTOR, "iframe"))[0]
    driver.switch_to.frame(frame)
