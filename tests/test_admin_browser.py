"""The real Socket.IO Admin UI (the build in npm's @socket.io/admin-ui, ui/dist) in headless
Chromium, served by the demo app itself (``run.py --admin-ui USER:HASH --admin-ui-path DIR``).

A login with a wrong password is refused; with the right one the demo page's socket appears;
a disconnect clicked in the UI reaches the demo page. Chromium is Debian's, driven by Playwright
(the ``browser`` fixture of tests/test_browser.py); the UI's requests to font and icon CDNs are
refused, as on an offline deployment. Every wait is bounded.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

import pytest

from tests import support
from tests.test_browser import WAIT_MS, browser  # noqa: F401  (the module-scoped Chromium fixture)

USER = "admin"
PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def ui_dist() -> str:
    dist = support.need_node_module("@socket.io/admin-ui") / "@socket.io" / "admin-ui" / "ui" / "dist"
    if not (dist / "index.html").is_file():
        support.missing(f"{dist} has no index.html (the Admin UI build)")
    return str(dist)


@pytest.fixture(scope="module")
def app_url(browser: Any, ui_dist: str) -> Iterator[str]:  # noqa: F811  (the fixture imported above)
    bcrypt = pytest.importorskip("bcrypt") if not support.IN_CI else __import__("bcrypt")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    with support.run_app(["--admin-ui", f"{USER}:{hashed}", "--admin-ui-path", ui_dist]) as port:
        yield f"http://127.0.0.1:{port}"


class AdminPage:
    """The Admin UI in its own browser context (fresh local storage), offline."""

    def __init__(self, browser: Any, url: str) -> None:  # noqa: F811
        self.url = url
        self.context = browser.new_context()
        self.context.route(lambda target: not target.startswith(url), lambda route: route.abort())
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.page.goto(url + "/admin-ui/", wait_until="domcontentloaded")

    def log_in(self, password: str) -> None:
        self.page.get_by_label("Server URL").fill(self.url)
        self.page.get_by_label("Username").fill(USER)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Connect").click()

    def wait_connected(self) -> None:
        self.page.locator("header").get_by_text("connected", exact=True).first.wait_for()

    def open_socket(self, namespace: str, sid: str) -> None:
        """The Sockets page, in *namespace*, then the details of socket *sid*."""
        self.page.goto(self.url + "/admin-ui/#/sockets")
        self.page.get_by_label("Select namespace").click(force=True)
        self.page.get_by_role("option", name=namespace).click()
        self.page.locator("main tbody tr", has_text=sid).click()
        self.page.locator("main").get_by_text("Socket details").wait_for()

    def close(self) -> None:
        self.context.close()


class Demo:
    """The demo page (namespace /test), which shows its state and sid."""

    def __init__(self, browser: Any, url: str) -> None:  # noqa: F811
        self.context = browser.new_context()
        self.context.route(lambda target: not target.startswith(url), lambda route: route.abort())
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.page.goto(url + "/", wait_until="domcontentloaded")
        self.page.wait_for_selector('#status[data-state="connected"]')
        self.sid = self.page.locator("#sid").inner_text().strip()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def admin(browser: Any, app_url: str) -> Iterator[AdminPage]:  # noqa: F811
    page = AdminPage(browser, app_url)
    try:
        yield page
    finally:
        page.close()


@pytest.fixture
def demo(browser: Any, app_url: str) -> Iterator[Demo]:  # noqa: F811
    page = Demo(browser, app_url)
    try:
        yield page
    finally:
        page.close()


def test_a_wrong_password_is_refused(admin: AdminPage) -> None:
    admin.log_in("wrong horse")
    admin.page.locator(".v-dialog").get_by_text("Invalid credentials").wait_for()
    assert admin.page.locator(".v-dialog").is_visible()


def test_with_the_right_password_the_demo_socket_appears(admin: AdminPage, demo: Demo) -> None:
    admin.log_in(PASSWORD)
    admin.wait_connected()
    admin.open_socket("/test", demo.sid)
    details = admin.page.locator("main").inner_text()
    assert demo.sid in details and "/test" in details
    assert re.search(r"Status\s+connected", details, re.IGNORECASE)


def test_the_servers_page_lists_this_server_as_healthy(admin: AdminPage) -> None:
    admin.log_in(PASSWORD)
    admin.wait_connected()
    admin.page.goto(admin.url + "/admin-ui/#/servers")
    row = admin.page.locator("main tbody tr").first
    row.get_by_text("healthy", exact=False).wait_for()
    assert "healthy" in row.inner_text().lower()


def test_a_disconnect_from_the_ui_reaches_the_client(admin: AdminPage, demo: Demo) -> None:
    admin.log_in(PASSWORD)
    admin.wait_connected()
    admin.open_socket("/test", demo.sid)
    admin.page.locator("main button:has(.mdi-logout)").first.click()
    demo.page.wait_for_selector('#status[data-state="disconnected"]')
    assert demo.page.locator("#status").get_attribute("data-state") == "disconnected"
