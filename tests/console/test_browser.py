"""The real `ledger console`, driven in headless Chromium (Debian's chromium and
chromium-driver, through Selenium): sign in, find a demo player, open the statement,
attribute a suspense item and see the balance change exactly once; a wrong role sees nothing.

Without chromium or chromedriver the tests skip with the reason, except under CI=true.
Set LEDGER_CONSOLE_SCREENSHOTS=DIR to save a screenshot of each main page there.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from ledger.cli.main import main
from projections.stores import open_projection_store
from tests.conftest import IS_CI
from tests.console.conftest import SUSPENSE_KEY

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
START_TIMEOUT_S = 30
SCREENSHOTS = os.environ.get("LEDGER_CONSOLE_SCREENSHOTS")

if not (CHROMIUM and CHROMEDRIVER):
    reason = (
        "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
    )
    if IS_CI:
        pytest.fail(f"under CI=true the browser tests must run: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

from selenium import webdriver  # noqa: E402  (only once chromium is known to be there)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served_console(console_history, auth):
    """`ledger console` in a process of its own, answering on a free loopback port."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "ledger",
        "console",
        "--database-url",
        console_history,
        "--auth-config",
        str(auth[0]),
        "--listen",
        f"127.0.0.1:{port}",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/signin", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"the console did not start: {process.stderr.read().decode()[-2000:]}")
    yield base
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def _sign_in(browser, base: str, token: str) -> None:
    browser.get(f"{base}/signin")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "signin").click()
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.TAG_NAME, "h1"))


def _shot(browser, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(SCREENSHOTS) / f"{name}.png"))


def _eur_player(database_url: str) -> str:
    """A demo player with a EUR wallet, from the views `ledger project` builds."""
    result = CliRunner().invoke(main, ["project", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    store = open_projection_store(database_url)
    try:
        for player_id in store.player_ids("", "", 100):
            if any(w["currency"] == "EUR" for w in store.wallets_of(player_id)):
                return player_id
    finally:
        store.close()
    raise AssertionError("the demo made no EUR wallet")


def _cash(browser, base: str, player_id: str) -> Decimal:
    browser.get(f"{base}/players/{player_id}")
    return Decimal(browser.find_element(By.ID, "cash-EUR").text)


def test_backoffice_attributes_suspense_once_in_the_browser(
    served_console, browser, auth, console_history
):
    """Sign in, find a player, open the statement, attribute suspense: cash rises once."""
    base, player_id = served_console, _eur_player(console_history)
    _sign_in(browser, base, auth[1]["backoffice"])
    browser.find_element(By.ID, "q").send_keys(player_id)
    browser.find_element(By.ID, "search").click()
    WebDriverWait(browser, 10).until(lambda b: "q=" in b.current_url)
    _shot(browser, "players")
    browser.find_element(By.LINK_TEXT, player_id).click()
    assert browser.find_element(By.ID, "player-id").text == player_id
    _shot(browser, "player")
    before = Decimal(browser.find_element(By.ID, "cash-EUR").text)
    browser.get(f"{base}/players/{player_id}/statement?currency=EUR")
    assert "Deposited" in browser.find_element(By.ID, "statement").text
    _shot(browser, "statement")
    browser.get(f"{base}/suspense")
    _shot(browser, "suspense")
    row = browser.find_element(By.ID, f"item-{SUSPENSE_KEY}")
    row.find_element(By.CLASS_NAME, "attribute-player").send_keys(player_id)
    row.find_element(By.CLASS_NAME, "attribute").click()
    WebDriverWait(browser, 10).until(lambda b: "/actions/" in b.current_url)
    assert browser.find_element(By.ID, "outcome").text == "OK"
    key = browser.find_element(By.ID, "idempotency-key").text
    assert key.startswith("console-")
    assert _cash(browser, base, player_id) == before + Decimal("12.5")
    browser.get(f"{base}/players/{player_id}/statement?currency=EUR")
    assert browser.find_element(By.ID, "statement").text.count(key) == 1
    browser.get(f"{base}/accounts")
    _shot(browser, "accounts")
    browser.get(f"{base}/status")
    _shot(browser, "status")


def test_a_wrong_role_sees_nothing_in_the_browser(served_console, browser, auth):
    """A game provider's token is refused at sign-in, and every page sends it back there."""
    _sign_in(browser, served_console, auth[1]["game_provider"])
    assert "may not use the console" in browser.find_element(By.ID, "error").text
    for page in ("/players", "/suspense", "/accounts"):
        browser.get(served_console + page)
        assert browser.current_url.endswith("/signin")
        assert "s7-p" not in browser.page_source
