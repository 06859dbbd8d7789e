"""The documentation site in a real headless Chromium: it renders, and its search finds "protocol".

    pip install -e ".[test]" && python docs/check_site.py

builds the site (``mkdocs build --strict`` into a temporary folder), serves it on 127.0.0.1 on a free port, and
checks in the system's Chromium (through selenium; Debian: ``apt-get install chromium chromium-driver``) that the home
page, the page of the method ``insvp`` and the Python API render, then types "protocol" into the search box and
waits for its results. The window with the results open is saved as ``docs/site.png``. Exit status 0 when every
check passes; 1, naming what failed, otherwise. Nothing is downloaded: the theme's search runs in the page.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import tempfile
import threading
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WINDOW = (1280, 860)
SCREENSHOT = ROOT / "docs" / "site.png"


def build(site: Path) -> None:
    """``mkdocs build --strict`` of this checkout into ``site``."""
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
                   cwd=ROOT, check=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})  # no banner about MkDocs 2


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without a log line per request: the checks say what matters."""

    def log_message(self, *args) -> None:
        pass


def serve(site: Path) -> http.server.ThreadingHTTPServer:
    """A static server of ``site`` on a free loopback port, answering from a daemon thread."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def check(url: str, screenshot: Path) -> list[str]:
    """The checks, in a headless Chromium: one line per check that passed. Raises on the first that fails."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    sys.path.insert(0, str(ROOT / "docs"))
    from serve_page import headless_chromium

    driver = headless_chromium(WINDOW)
    wait = WebDriverWait(driver, 60)
    passed = []

    def page(path: str, heading: str, *selectors: str) -> None:
        driver.get(f"{url}/{path}")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "article h1"))
        shown = driver.find_element(By.CSS_SELECTOR, "article h1").text.strip()
        if heading not in shown:
            raise AssertionError(f"/{path}: the heading is {shown!r}, not {heading!r}")
        for selector in selectors:
            if not driver.find_elements(By.CSS_SELECTOR, selector):
                raise AssertionError(f"/{path}: nothing matches {selector!r}")
        passed.append(f"/{path}: {shown!r} and {', '.join(selectors)}")

    try:
        page("", "insvp", "nav.md-nav", "img[src='gradcam.png']")
        loaded = driver.execute_script("const i = document.querySelector(\"img[src='gradcam.png']\");"
                                       "return i.complete && i.naturalWidth > 0;")
        if not loaded:
            raise AssertionError("/: the Grad-CAM figure did not load")
        page("methods/insvp/", "insvp", "table code", "a[href='../../protocols/']")
        page("reference/api/", "Python API", "[id='insvp_cli.load_model']", "[id='insvp_cli.methods.base.Method']",
             "[id='insvp_cli.config.schema.TrainConfig']")
        driver.get(url + "/")
        box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "input.md-search__input"))
        box.click()  # the search box of the header, as a reader opens it
        box.send_keys("protocol")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".md-search-result__item"))
        titles = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".md-search-result__item h1")][:5]
        passed.append(f"search 'protocol': {len(titles)}+ results, first {titles}")
        driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()
    return passed


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        build(site)
        server = serve(site)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            for line in check(url, SCREENSHOT):
                print(f"ok {line}")
        except Exception as exc:  # a failed check, or no browser: one line
            print(f"site check failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                  file=sys.stderr)
            return 1
        finally:
            server.shutdown()
    print(f"{SCREENSHOT.relative_to(ROOT)} written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
