"""Headless Chromium from Debian's packages, driven by selenium through Debian's chromedriver.

No browser or driver is downloaded: both paths are given, so Selenium Manager is never asked.
`scripts/ensure_chromium.sh` installs them; without them the UI test fails saying so.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WINDOW = (1600, 1000)
COMMUNITY_DIALOG = "Join the Dagster community"
# Seconds to wait for the UI to render what a page is asserted on.
WAIT_S = 60


class Page:
    """The browser on the Dagster UI at `base`: open pages, wait for text, click, screenshot."""

    def __init__(self, driver: webdriver.Chrome, base: str, community_dialog: bool) -> None:
        self.driver = driver
        self.base = base
        self.community_dialog = community_dialog

    def open(self, path: str) -> None:
        """Load `path` of the UI; while the community dialog is due, wait for it and skip it
        (skipping records it in the Dagster home: it is not shown again)."""
        self.driver.get(self.base + path)
        if self.community_dialog:
            self.click_button("Skip", within=COMMUNITY_DIALOG)
            self.wait_until_gone(COMMUNITY_DIALOG)
            self.community_dialog = False

    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def wait_for_text(self, *texts: str) -> str:
        """Wait until every one of `texts` is on the rendered page; returns the page's text."""
        try:
            WebDriverWait(self.driver, WAIT_S).until(lambda _: all(t in self.text() for t in texts))
        except TimeoutException:
            missing = [t for t in texts if t not in self.text()]
            raise AssertionError(
                f"{self.driver.current_url}: not rendered within {WAIT_S} s: {missing}\n"
                f"the page says:\n{self.text()}"
            ) from None
        return self.text()

    def wait_until_gone(self, text: str) -> None:
        try:
            WebDriverWait(self.driver, WAIT_S).until(lambda _: text not in self.text())
        except TimeoutException:
            raise AssertionError(f"{text!r} still shown after {WAIT_S} s") from None

    def element(self, xpath: str, what: str) -> WebElement:
        def shown(driver: webdriver.Chrome) -> WebElement | None:
            found = driver.find_elements(By.XPATH, xpath)
            return next((e for e in found if e.is_displayed()), None)

        try:
            return WebDriverWait(self.driver, WAIT_S).until(shown)
        except TimeoutException:
            raise AssertionError(
                f"{self.driver.current_url}: no {what} within {WAIT_S} s\n"
                f"the page says:\n{self.text()}"
            ) from None

    def click_button(self, label: str, within: str | None = None) -> None:
        """Click the button labelled `label` (in the dialog that says `within`, if given)."""
        if within:
            self.wait_for_text(within)
        self.element(f"//button[normalize-space(.)='{label}']", f"button {label!r}").click()

    def click_text(self, text: str) -> None:
        """Click the innermost element whose text is `text`."""
        xpath = f"//*[normalize-space(.)='{text}' and not(*[normalize-space(.)='{text}'])]"
        self.element(xpath, f"element {text!r}").click()

    def click_menu_item(self, text: str) -> None:
        """Click the menu item (a row of a dropdown checklist) that says `text` (its text
        content holds the key twice: the shown one and a copy the UI measures)."""
        xpath = f"//*[@role='menuitem'][contains(., '{text}')]"
        self.element(xpath, f"menu item {text!r}").click()

    def type_into(self, placeholder: str, text: str) -> None:
        """Replace what the input with `placeholder` holds by `text`."""
        field = self.element(f"//input[@placeholder='{placeholder}']", f"input {placeholder!r}")
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.BACKSPACE)
        field.send_keys(text)

    def press_escape(self) -> None:
        self.driver.switch_to.active_element.send_keys(Keys.ESCAPE)

    def scroll_to_text(self, text: str) -> None:
        """Scroll the innermost element whose text is `text` to the top of its view."""
        xpath = f"//*[normalize-space(.)='{text}' and not(*[normalize-space(.)='{text}'])]"
        found = self.element(xpath, f"element {text!r}")
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", found)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.driver.save_screenshot(str(path)):
            raise AssertionError(f"no screenshot written to {path}")
        return path


@contextmanager
def chromium(base: str, community_dialog: bool) -> Iterator[Page]:
    """Headless Chromium on a fresh profile, looking at the UI at `base`.

    Args:
        base: The UI's address.
        community_dialog: Whether the UI will show its community dialog (GraphQL's
            `shouldShowNux`): the first page opened waits for it and skips it.
    """
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not tool.exists():
            raise AssertionError(
                f"{tool} is missing: run scripts/ensure_chromium.sh (make test and make ui-check "
                "run it), which installs Debian's chromium and chromium-driver"
            )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="warmup-chromium-") as profile:
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
        ):
            options.add_argument(argument)
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            yield Page(driver, base, community_dialog)
        finally:
            driver.quit()
