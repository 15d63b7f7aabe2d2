"""The Items tab in a real browser, against the real deployment (api-server, scheduler,
dag-processor): a running task's counts rising, the final summary, failed items with search, paging
and finding, "Rerun failed items" and the page following the new try, a DAG run's chunked tasks, and
the security: nobody unauthenticated gets anything, a viewer may read but not rerun, item texts
render as text.

Set ``AIRFLOW_ITERATE_SCREENSHOTS=DIR`` to keep the screenshots the README shows (docs/images/).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from ._browser import chromium, log_in, open_tab, tab_url, wait_until
from ._deployment import AirflowDeployment

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

XSS_LABEL = "<img src=x onerror=alert(1)>"
FAILING = [n for n in range(2_000) if n % 33 == 7]
RUNNING_FAILURES = [n for n in range(600) if n % 97 == 5]
HAS_STATE_STORE = True
try:
    import airflow.models.task_state_store  # noqa: F401
except ImportError:  # Airflow 3.1, 3.2: no rerun of failed items
    HAS_STATE_STORE = False


@pytest.fixture(scope="module")
def browser(airflow_deployment: AirflowDeployment) -> Iterator[Any]:
    with chromium() as driver:
        log_in(driver, airflow_deployment.base_url, "admin", airflow_deployment.passwords["admin"])
        yield driver


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("AIRFLOW_ITERATE_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def steering(airflow_deployment: AirflowDeployment) -> Path:
    folder = airflow_deployment.home / "items-tab"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def finished_runs(airflow_deployment: AirflowDeployment, steering: Path) -> dict[str, str]:
    """The run with failures and the chunked run, started at once: they run while the tests before
    them do (each task instance takes seconds to start on a small machine)."""
    (steering / "effects.log").unlink(missing_ok=True)
    (steering / "broken").touch()  # removed once the first try has ended
    return {
        dag_id: airflow_deployment.trigger(dag_id, prefix)
        for dag_id, prefix in [
            ("iterate_items_tab_failures_e2e", "failures"),
            # ':' and '+' as in the UI's own run ids, which Airflow 3.1 puts in the tab's URL unencoded
            ("iterate_items_tab_chunked_e2e", "manual__2026-12-01T00:00:00+00:00"),
        ]
    }


def count(driver: Any, name: str) -> int:
    from selenium.webdriver.common.by import By

    text = driver.find_element(By.CSS_SELECTOR, f"[data-count={name}] dd").text
    return int(text.replace(",", ""))


def body(driver: Any, attribute: str) -> str | None:
    from selenium.webdriver.common.by import By

    value: str | None = driver.find_element(By.TAG_NAME, "body").get_attribute(f"data-{attribute}")
    return value


def texts(driver: Any, selector: str) -> list[str]:
    from selenium.webdriver.common.by import By

    return [element.text for element in driver.find_elements(By.CSS_SELECTOR, selector)]


def screenshot(driver: Any, folder: Path, name: str) -> None:
    """The whole UI page, the tab in it; then back into the tab's frame."""
    from selenium.webdriver.common.by import By

    driver.execute_script("window.scrollTo(0, 0)")
    driver.switch_to.default_content()
    driver.save_screenshot(str(folder / name))
    driver.switch_to.frame(driver.find_element(By.CSS_SELECTOR, "iframe"))


def assert_no_alert(driver: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        alert = driver.switch_to.alert
    except NoAlertPresentException:
        return
    raise AssertionError(f"a script from an item's label ran: alert {alert.text!r}")


def stored_failure_page(
    deployment: AirflowDeployment, dag_id: str, run_id: str, task_id: str, page: int
) -> list[dict[str, Any]]:
    """A page of the ledger's failed items as Airflow's REST API gives it (state store, or XCom)."""
    if not HAS_STATE_STORE:
        value: list[dict[str, Any]] = deployment.xcom(
            dag_id, run_id, task_id, f"iterate_ledger_failed_{page}"
        )
        return value
    entry = deployment.api.get(
        f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
        f"/state-store/airflow_iterate/ledger/failed/{page}",
        map_index=-1,
    )
    stored: list[dict[str, Any]] = entry["value"]
    return stored


def wait_for_run(deployment: AirflowDeployment, dag_id: str, run_id: str) -> None:
    run = deployment.wait_for_run(dag_id, run_id, 240)
    assert run["state"] == "success", deployment.diagnostics()


def test_nothing_without_a_session_or_token(airflow_deployment: AirflowDeployment) -> None:
    import httpx

    ti = "iterate_items_tab_e2e/any-run/fetch"
    with httpx.Client(base_url=airflow_deployment.base_url, timeout=30) as anonymous:
        for method, path in [
            ("GET", f"/iterate/ti/{ti}/%7BMAP_INDEX%7D"),
            ("GET", "/iterate/run/iterate_items_tab_e2e/any-run"),
            ("GET", f"/iterate/api/ti/{ti}/-1"),
            ("GET", f"/iterate/api/ti/{ti}/-1/find?index=3"),
            ("GET", "/iterate/api/run/iterate_items_tab_e2e/any-run"),
            ("POST", f"/iterate/api/ti/{ti}/-1/rerun-failed"),
            ("GET", "/iterate/static/items.js"),
        ]:
            response = anonymous.request(method, path)
            assert response.status_code == 401, (method, path, response.status_code, response.text)


def test_a_running_task_then_its_final_summary(
    airflow_deployment: AirflowDeployment,
    browser: Any,
    steering: Path,
    screenshots: Path,
    finished_runs: dict[str, str],
) -> None:
    dag_id = "iterate_items_tab_e2e"
    (steering / "hold").touch()
    try:
        run_id = airflow_deployment.trigger(dag_id, "items")
        open_tab(browser, tab_url(airflow_deployment.base_url, dag_id, run_id, "fetch"))
        wait_until(
            "the tab to show the running items",
            lambda: body(browser, "ledger-state") == "running" and count(browser, "done") > 0,
            timeout=120,
        )
        seen = [count(browser, "done")]
        wait_until("the counts to rise twice", lambda: _rose(browser, seen, 2), timeout=30)
        in_flight = texts(browser, "#in-flight-table .label")
        assert in_flight and all(label.startswith("/in/") for label in in_flight)
        assert count(browser, "total") == 600 and 0 < count(browser, "in_flight") <= 4
        assert body(browser, "polling") == "running"
        assert "left" in texts(browser, "#eta")[0]
        # Hidden, the tab stops asking; visible again, it catches up.
        browser.execute_script(
            "Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
            "document.dispatchEvent(new Event('visibilitychange'));"
        )
        wait_until("the polling to pause", lambda: "paused" in texts(browser, "#polling")[0], timeout=10)
        paused_at = count(browser, "done")
        time.sleep(1.5)
        assert count(browser, "done") == paused_at
        browser.execute_script(
            "Object.defineProperty(document, 'hidden', {value: false, configurable: true});"
            "document.dispatchEvent(new Event('visibilitychange'));"
        )
        wait_until("the tab to catch up", lambda: count(browser, "done") > paused_at, timeout=10)
        screenshot(browser, screenshots, "items-tab-running.png")
    finally:
        (steering / "hold").unlink(missing_ok=True)
    wait_until(
        "the final summary",
        lambda: body(browser, "polling") == "stopped" and body(browser, "ledger-state") == "success",
        timeout=120,
    )
    assert count(browser, "done") == 600 and count(browser, "failed") == len(RUNNING_FAILURES)
    assert count(browser, "succeeded") == 600 - len(RUNNING_FAILURES) and count(browser, "in_flight") == 0
    assert "final" in texts(browser, "#polling")[0]
    shown = [int(i.replace(",", "")) for i in texts(browser, ".failed-row td:first-child")]
    assert sorted(shown) == RUNNING_FAILURES


def _rose(driver: Any, seen: list[int], times: int) -> bool:
    done = count(driver, "done")
    if done > seen[-1]:
        seen.append(done)
    return len(seen) > times


def test_failed_items_search_xss_and_rerun(
    airflow_deployment: AirflowDeployment,
    browser: Any,
    steering: Path,
    screenshots: Path,
    finished_runs: dict[str, str],
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    dag_id = "iterate_items_tab_failures_e2e"
    effects = steering / "effects.log"
    run_id = finished_runs[dag_id]
    wait_for_run(airflow_deployment, dag_id, run_id)
    (steering / "broken").unlink()

    open_tab(browser, tab_url(airflow_deployment.base_url, dag_id, run_id, "load"))
    wait_until("the final summary", lambda: body(browser, "polling") == "stopped", timeout=30)
    assert count(browser, "failed") == len(FAILING) and count(browser, "succeeded") == 2_000 - len(FAILING)

    # The label that is HTML renders as its text, in the label and in the error message.
    first = browser.find_element(By.CSS_SELECTOR, ".failed-row[data-index='7']")
    assert first.find_element(By.CSS_SELECTOR, ".label").text == XSS_LABEL
    message = first.find_element(By.CSS_SELECTOR, ".message").text
    assert message == f"ConnectionError: partner API refused {XSS_LABEL}"
    assert browser.find_elements(By.CSS_SELECTOR, "#failed-table img") == []
    assert_no_alert(browser)

    assert texts(browser, "#failed-range") == [f"1–25 of {len(FAILING)}"]
    browser.find_element(By.ID, "failed-next").click()
    wait_until("the second page", lambda: texts(browser, "#failed-range") == [f"26–50 of {len(FAILING)}"])
    # The tab shows the ledger's pages as stored (in the order the items failed, mostly by index).
    stored = stored_failure_page(airflow_deployment, dag_id, run_id, "load", 0)
    assert texts(browser, ".failed-row .label") == [entry["label"] for entry in stored[25:50]]

    search = browser.find_element(By.ID, "failed-search")
    search.send_keys("01360")
    wait_until("one match", lambda: texts(browser, ".failed-row .label") == ["record-01360"])
    assert texts(browser, "#failed-range") == ["1–1 of 1"]
    search.clear()
    search.send_keys("no-such-record")
    wait_until("no match", lambda: browser.find_elements(By.CSS_SELECTOR, "p#failed-table"))
    search.clear()
    search.send_keys(" ", Keys.BACKSPACE)  # input events (clear() sends none): every failed item again
    wait_until("every failure again", lambda: texts(browser, "#failed-range") == [f"1–25 of {len(FAILING)}"])

    lookups = [("1360", "failed after 1 attempt(s)"), ("5", "succeeded"), ("2000", "not an item")]
    for query, expected in lookups:
        box = browser.find_element(By.ID, "find-input")
        box.clear()
        box.send_keys(query)
        browser.find_element(By.ID, "find-button").click()
        wait_until(f"item {query}", lambda e=expected: e in " ".join(texts(browser, "#find-result li")))
    box = browser.find_element(By.ID, "find-input")
    box.clear()
    box.send_keys("onerror")
    browser.find_element(By.ID, "find-button").click()
    wait_until("the XSS item by label", lambda: XSS_LABEL in " ".join(texts(browser, "#find-result li")))
    assert_no_alert(browser)
    box.clear()
    screenshot(browser, screenshots, "items-tab-failures.png")

    if not HAS_STATE_STORE:
        assert "Airflow 3.3" in texts(browser, "#rerun-unavailable")[0]
        assert browser.find_elements(By.ID, "rerun-button") == []
        return

    # Rerun: a first click arms the button, the second makes the request; the tab follows try 2.
    browser.find_element(By.ID, "rerun-button").click()
    assert "Confirm" in browser.find_element(By.ID, "rerun-button").text
    browser.find_element(By.ID, "rerun-button").click()
    wait_until("the request to be taken", lambda: "Cleared" in texts(browser, "#rerun-status")[0])
    status = texts(browser, "#rerun-status")[0]
    assert "load[-1]" in status and "count[-1]" in status
    wait_until(
        "try 2's final summary",
        lambda: (
            body(browser, "ledger-try") == "2"
            and body(browser, "polling") == "stopped"
            and body(browser, "ledger-state") == "success"
        ),
        timeout=180,
    )
    assert count(browser, "failed") == 0 and count(browser, "succeeded") == len(FAILING)
    assert count(browser, "resumed") == 2_000 - len(FAILING)
    assert browser.find_elements(By.ID, "rerun-button") == []

    per_try: dict[int, Counter[int]] = {}
    for line in effects.read_text().splitlines():
        n, attempt = map(int, line.split())
        per_try.setdefault(attempt, Counter())[n] += 1
    assert sorted(per_try[2]) == FAILING and set(per_try[2].values()) == {1}
    wait_for_run(airflow_deployment, dag_id, run_id)
    assert airflow_deployment.xcom(dag_id, run_id, "count") == 2_000
    assert airflow_deployment.xcom(dag_id, run_id, "load") == [n * 2 for n in range(2_000)]

    # The downstream task is no iterated one, and its tab says so.
    open_tab(browser, tab_url(airflow_deployment.base_url, dag_id, run_id, "count"))
    wait_until("the explanation", lambda: texts(browser, "#not-iterated"))
    assert "not an iterated task" in texts(browser, "#not-iterated")[0]


def test_a_chunked_run_and_what_a_viewer_may_do(airflow_deployment: AirflowDeployment, browser: Any) -> None:
    import httpx
    from selenium.webdriver.common.by import By

    dag_id = "iterate_items_tab_chunked_e2e"
    run_id = airflow_deployment.trigger(dag_id, "chunked")
    wait_for_run(airflow_deployment, dag_id, run_id)
    failing = [n for n in range(200) if n % 50 == 3]

    # An admin's API view: each chunk offers the rerun, the gathered ledger does not.
    api = airflow_deployment.api
    chunk = api.get(f"/iterate/api/ti/{dag_id}/{quote(run_id, safe='')}/convert.chunks/0")
    assert chunk["ledger"]["chunk"] == {"start": 0, "stop": 100}
    assert chunk["rerun"]["offered"] is HAS_STATE_STORE and chunk["rerun"]["allowed"] is True
    gather = api.get(f"/iterate/api/ti/{dag_id}/{quote(run_id, safe='')}/convert.gather/-1")
    assert gather["ledger"]["chunks"]["count"] == 2 and gather["rerun"]["offered"] is False

    viewer_token = api.token("viewer", airflow_deployment.passwords["viewer"])
    with httpx.Client(base_url=airflow_deployment.base_url, timeout=30) as viewer:
        viewer.headers["Authorization"] = f"Bearer {viewer_token}"
        path = f"/iterate/api/ti/{dag_id}/{quote(run_id, safe='')}/convert.chunks/0"
        seen = viewer.get(path).json()
        assert seen["rerun"]["allowed"] is False and seen["rerun"]["offered"] is False
        assert len(seen["failed"]["items"]) == 2
        refused = viewer.post(f"{path}/rerun-failed")
        assert refused.status_code == 403, refused.text
    # An admin without the page's token, or from another site, is refused too.
    admin = airflow_deployment.api.http
    assert admin.post(f"{path}/rerun-failed").status_code == 403
    page = admin.get(f"/iterate/ti/{dag_id}/{quote(run_id, safe='')}/convert.chunks/0")
    token = page.text.split('"csrf": "', 1)[1].split('"', 1)[0]
    forged = admin.post(
        f"{path}/rerun-failed", headers={"X-Iterate-CSRF": token, "Origin": "http://evil.example"}
    )
    assert forged.status_code == 403 and "cross-site" in forged.text

    log_in(browser, airflow_deployment.base_url, "viewer", airflow_deployment.passwords["viewer"])
    try:
        open_tab(browser, tab_url(airflow_deployment.base_url, dag_id, run_id))
        wait_until("the chunks", lambda: len(browser.find_elements(By.CSS_SELECTOR, ".chunk-row")) == 2)
        totals = browser.find_element(By.CSS_SELECTOR, ".totals-row").text
        assert "200 / 200" in totals and f" {len(failing)} " in f" {totals} "
        browser.find_elements(By.CSS_SELECTOR, ".chunk-row a")[0].click()  # into chunk 0's items
        wait_until("chunk 0's items", lambda: body(browser, "polling") == "stopped")
        assert sorted(texts(browser, ".failed-row .label")) == ["part 3", "part 53"]
        assert browser.find_elements(By.ID, "rerun-button") == []
        if HAS_STATE_STORE:
            assert "edit access" in texts(browser, "#rerun-not-allowed")[0]
        open_tab(browser, tab_url(airflow_deployment.base_url, dag_id, run_id, "convert.chunks", 1))
        wait_until("chunk 1's items", lambda: body(browser, "polling") == "stopped")
        assert sorted(texts(browser, ".failed-row .label")) == ["part 103", "part 153"]
    finally:
        log_in(browser, airflow_deployment.base_url, "admin", airflow_deployment.passwords["admin"])
