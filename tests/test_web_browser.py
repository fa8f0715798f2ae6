"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright (no browser
download), against `ghost serve` running as a real process on a free port.

With GHOST_WEB_SCREENSHOTS=DIR set, the test also saves the screenshots shown in the README
(web-list.png, web-task.png, web-phone.png) into DIR.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from support import ghost, wait_for
from web_support import Server, run_task, start_server

CHROMIUM = "/usr/bin/chromium"
SHOTS = os.environ.get("GHOST_WEB_SCREENSHOTS")

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"no system Chromium at {CHROMIUM} (apt install chromium)")


@pytest.fixture
def server(env) -> Iterator[Server]:
    srv = start_server(env)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            chromium.close()


def signed_in(browser, server: Server, **context):
    page = browser.new_context(**context).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server.url}/?token={server.token}")
    page.wait_for_selector("#view-list:not([hidden])")
    assert page.url == f"{server.url}/"  # the token left the address bar
    return page, errors


def test_the_dashboard_follows_a_cli_task_live_and_stops_it(server, browser, env):
    page, errors = signed_in(browser, server, viewport={"width": 1200, "height": 800})
    assert page.locator("#conn").inner_text() in ("live", "connecting")
    task = run_task("sh", "-c", "for i in $(seq 1 200); do echo tick $i; sleep 0.2; done",
                    env=env)
    row = page.locator(f"#tasks tbody tr[data-id='{task}']")
    row.wait_for(timeout=15000)  # appeared without a reload, from the event stream
    assert "running" in row.inner_text()
    if SHOTS:
        _extra_tasks(env)
        page.locator("#tasks tbody tr").nth(4).wait_for(timeout=15000)
        page.screenshot(path=os.path.join(SHOTS, "web-list.png"))
    row.click()
    page.locator("#term .xterm-rows").get_by_text("tick 3").wait_for(timeout=15000)
    assert page.locator("#t-details").get_by_text(task).count() == 1
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "web-task.png"))
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("[data-act=stop]")
    page.locator("#t-details .s-killed").wait_for(timeout=20000)
    assert "SIGTERM" in page.locator("#t-details .s-killed").inner_text()
    page.locator("#t-history").get_by_text("stop_requested").wait_for(timeout=10000)
    history = ghost("history", task, env=env).stdout.decode()
    assert "web" in history  # recorded as the dashboard's doing
    # Back on the list, the row shows the end, still without a reload.
    page.click("text=← all tasks")
    wait_for(lambda: "killed" in row.inner_text(), 10, message="the row to show the end")
    assert errors == []


def test_the_run_form_starts_a_task_and_shows_its_output(server, browser):
    page, errors = signed_in(browser, server, viewport={"width": 1000, "height": 700})
    page.click("#run-open")
    page.fill("#run-form [name=command]", "sh -c 'echo from the form; sleep 30'")
    page.click("#run-form button[type=submit]")
    page.wait_for_selector("#view-task:not([hidden])")
    page.locator("#term .xterm-rows").get_by_text("from the form").wait_for(timeout=15000)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("[data-act=kill]")
    page.locator("#t-details .s-killed").wait_for(timeout=20000)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("[data-act=cleanup]")
    page.wait_for_selector("#view-list:not([hidden])")
    assert page.locator("#tasks tbody tr").count() == 0
    page.click("#run-open")
    page.fill("#run-form [name=command]", "no-such-program-xyz")
    page.click("#run-form button[type=submit]")
    page.locator("#run-error").get_by_text("command not found").wait_for(timeout=10000)
    assert errors == []


def test_a_fetch_in_flight_does_not_bring_back_a_cleaned_task(server, browser, env):
    """The page refetches a task when an event names it; an answer that left the server before
    the task was cleaned up but arrives after must not put its row back (CI saw that row)."""
    task = run_task("sh", "-c", "sleep 30", env=env)
    page, errors = signed_in(browser, server, viewport={"width": 1000, "height": 700})
    row = page.locator(f"#tasks tbody tr[data-id='{task}']")
    row.wait_for(timeout=15000)
    held: list = []

    def hold(route) -> None:
        # Fetch the answer now, deliver it later: a response overtaken by the cleanup.
        held.append((route, route.fetch()))

    page.route(f"**/api/tasks/{task}", hold)
    ghost("kill", task, env=env)
    deadline = time.monotonic() + 15
    while not held:
        assert time.monotonic() < deadline, "the page never refetched the killed task"
        page.wait_for_timeout(20)
    assert ghost("cleanup", "--all", env=env).returncode == 0
    row.wait_for(state="detached", timeout=15000)  # the cleaned event removed it
    for route, response in held:
        route.fulfill(response=response)
    page.unroute(f"**/api/tasks/{task}")
    # A task started afterwards shows up; by then the stale answer was long handled.
    later = run_task("sh", "-c", "sleep 30", env=env)
    page.locator(f"#tasks tbody tr[data-id='{later}']").wait_for(timeout=15000)
    assert row.count() == 0
    assert errors == []
    ghost("kill", later, env=env)


def test_the_dashboard_is_readable_at_phone_width(server, browser, env):
    run_task("sh", "-c", "echo a long line of output; sleep 30", env=env)
    if SHOTS:
        _extra_tasks(env)
    page, errors = signed_in(browser, server, viewport={"width": 390, "height": 844},
                             device_scale_factor=2, is_mobile=True, has_touch=True)
    page.locator("#tasks tbody tr").first.wait_for(timeout=15000)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390  # no sideways scrolling
    assert not page.locator("#tasks th.wide").first.is_visible()  # secondary columns hidden
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "web-phone.png"))
    assert errors == []


def test_without_the_cookie_the_page_asks_to_sign_in(server, browser):
    page = browser.new_page()
    page.goto(server.url + "/")
    page.wait_for_selector("#sign-in:not([hidden])")
    assert page.locator("#tasks tbody tr").count() == 0


def _extra_tasks(env: dict[str, str]) -> None:
    """A few more tasks, so the screenshot of the list shows each kind of ending."""
    from support import wait_ended

    done = run_task("sh", "-c", "echo built", env=env)
    failed = run_task("sh", "-c", "echo oops >&2; exit 2", env=env)
    ghost("run", "--name", "api", "-g", "web", "python3", "-m", "http.server", "0", env=env)
    killed = run_task("sleep", "300", env=env)
    ghost("kill", killed, env=env)
    for task in (done, failed):
        wait_ended(task, env)


def test_typing_into_a_terminal_task(server, browser):
    page, errors = signed_in(browser, server, viewport={"width": 1000, "height": 700})
    page.click("#run-open")
    page.fill("#run-form [name=command]", "sh -c 'printf \"name? \"; read n; echo hello $n; "
                                          "sleep 30'")
    page.check("#run-form [name=pty]")
    page.click("#run-form button[type=submit]")
    page.wait_for_selector("#view-task:not([hidden])")
    task = page.url.rsplit("/", 1)[1]
    assert server.http().get(f"/api/tasks/{task}").json().get("input") == "pty"
    page.locator("#term .xterm-rows").get_by_text("name?").wait_for(timeout=15000)
    page.locator("#t-input").wait_for(state="visible")
    page.click("#term")
    page.keyboard.type("bob")
    page.keyboard.press("Enter")
    page.locator("#term .xterm-rows").get_by_text("hello bob").wait_for(timeout=15000)
    assert errors == []
