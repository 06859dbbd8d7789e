"""The page of ``insvp serve`` in a real headless Chromium: the README's screenshot, ``docs/serve.png``.

    insvp quickstart && python docs/serve_page.py

serves the quickstart's InsVP and linear-probe runs, opens the page, uploads ``docs/digit-8.png`` to the InsVP task
and saves what the browser shows. :func:`try_page` is also what ``tests/test_serve_page.py`` runs. It needs Chromium
and its chromedriver from the system's packages (Debian: ``apt-get install chromium chromium-driver``) and selenium
(in the test extra); nothing is downloaded.
"""

from __future__ import annotations

import secrets
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WINDOW = (1180, 680)


def chromium() -> tuple[str, str] | None:
    """The system's Chromium and chromedriver, or ``None`` when either is missing."""
    browser = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def headless_chromium(window: tuple[int, int]):
    """A selenium driver of the system's Chromium, headless, with a window of ``window`` pixels (width, height).

    Raises:
        RuntimeError: no Chromium or chromedriver on this machine.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    found = chromium()
    if found is None:
        raise RuntimeError(f"no Chromium with chromedriver found (looked for {', '.join(BROWSERS)} and chromedriver)")
    options = Options()
    options.binary_location = found[0]
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={window[0]},{window[1]}"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(found[1]), options=options)


def try_page(url: str, token: str, task: str, image: Path, screenshot: Path | None = None) -> list[str]:
    """Open the page with the token, pick ``task``, upload ``image``; the classes it shows once the Grad-CAM overlay
    has loaded, most probable first. With ``screenshot``, the window is saved there as a PNG."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = headless_chromium(WINDOW)
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(f"{url}/?token={token}")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#task option[value='{task}']"))
        Select(driver.find_element(By.ID, "task")).select_by_value(task)
        driver.find_element(By.ID, "file").send_keys(str(Path(image).resolve()))
        wait.until(lambda d: d.find_element(By.ID, "result").get_attribute("data-state") == "done"
                   or d.find_element(By.ID, "error").is_displayed())
        error = driver.find_element(By.ID, "error")
        if error.is_displayed():
            raise RuntimeError(f"the page shows an error: {error.text}")
        wait.until(lambda d: d.execute_script("const i = document.getElementById('cam'); "
                                              "return i.complete && i.naturalWidth > 0;"))
        if screenshot is not None:
            driver.save_screenshot(str(screenshot))
        return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#classes li .name")]
    finally:
        driver.quit()


def main() -> int:
    sys.path.insert(0, str(ROOT))  # this checkout's insvp_cli
    from insvp_cli.serve.process import ServerProcess

    runs = [ROOT / "runs" / "quickstart" / name for name in ("insvp", "linear")]
    missing = [str(r) for r in runs if not (r / "best.pt").is_file()]
    if missing:
        print(f"missing {', '.join(missing)}: run `insvp quickstart` first", file=sys.stderr)
        return 1
    token = secrets.token_urlsafe(16)
    with ServerProcess([f"quickstart-{r.name}={r}" for r in runs], token=token) as server:
        shown = try_page(server.url, token, "quickstart-insvp", ROOT / "docs" / "digit-8.png", ROOT / "docs" /
                         "serve.png")
    print(f"docs/serve.png written; the page shows {', '.join(shown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
