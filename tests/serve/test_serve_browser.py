"""End to end in headless Chromium (Debian's chromium and chromium-driver, driven by Selenium): upload a shipped
example, type prompts, separate, and check that the results play and their spectrograms load."""

import os
import shutil
from pathlib import Path

import pytest

from bisep.examples import list_examples
from bisep.separator.api import Separator
from bisep.serve.app import Settings, create_app
from conftest import served

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (scripts/setup.sh installs them)")


@pytest.fixture(scope="module")
def server_url():
    app = create_app(Settings(model="unittest"), Separator.from_pretrained("unittest", device="cpu"))
    with served(app) as port:
        yield f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs the selenium package")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--mute-audio",
                     "--autoplay-policy=no-user-gesture-required", "--window-size=1200,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


PLAYS = """
const [audio, done] = [arguments[0], arguments[arguments.length - 1]];
const report = (error) => done({duration: audio.duration, position: audio.currentTime, error});
const started = Date.now();  // a loaded machine may take more than a moment before the position moves
const moved = () => audio.currentTime > 0 || Date.now() - started > 5000;
const advanced = () => moved() ? report(null) : setTimeout(advanced, 100);
const play = () => audio.play().then(() => setTimeout(advanced, 400)).catch((e) => report(String(e)));
audio.addEventListener("error", () => report("media error " + audio.error.code), {once: true});
if (audio.readyState >= 1) play(); else { audio.addEventListener("loadedmetadata", play, {once: true}); audio.load(); }
"""
LOADED = "return arguments[0].complete && arguments[0].naturalWidth > 0;"


def wait(driver, condition, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda _: condition())


def test_upload_prompt_separate_listen_and_look(server_url, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    example = list_examples()[0]
    browser.get(server_url)
    wait(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, "#gallery .card")) == len(list_examples()))
    browser.find_element(By.ID, "file-input").send_keys(str(example.mixture))
    assert browser.find_element(By.ID, "file-name").text.startswith("mixture.flac")

    browser.find_element(By.ID, "separate-button").click()  # no prompt yet: the server's refusal shows
    error = browser.find_element(By.ID, "error")
    wait(browser, lambda: error.is_displayed())
    assert error.text.startswith("empty prompt")

    first = browser.find_element(By.CSS_SELECTOR, "#prompt-list input")
    first.send_keys(example.prompts[0], Keys.ENTER)
    browser.switch_to.active_element.send_keys(example.prompts[1])
    browser.find_element(By.ID, "separate-button").click()
    wait(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, "#tracks article")) == 3)
    assert not error.is_displayed() and not browser.find_element(By.ID, "status").is_displayed()
    titles = [element.text for element in browser.find_elements(By.CSS_SELECTOR, "#tracks h3")]
    assert titles == [f"“{example.prompts[0]}”", f"“{example.prompts[1]}”", "Everything else (residual)"]

    players = browser.find_elements(By.CSS_SELECTOR, "#results audio")
    assert len(players) == 4  # the input, two prompts, the residual
    for player in players:
        played = browser.execute_async_script(PLAYS, player)
        assert played["error"] is None and abs(played["duration"] - 4.0) < 0.05 and played["position"] > 0, played
    images = browser.find_elements(By.CSS_SELECTOR, "#results img")
    assert len(images) == 4
    wait(browser, lambda: all(browser.execute_script(LOADED, image) for image in images), timeout=10)
    assert browser.find_element(By.CSS_SELECTOR, "#results a[download]").get_attribute("href").endswith(".flac")
    save_screenshot(browser, tmp_path / "bisep-serve.png")

    browser.find_elements(By.CSS_SELECTOR, "#gallery .card button")[1].click()  # one click on an example
    second = list_examples()[1]
    wait(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, "#tracks .reference img")) == 2)
    references = browser.find_elements(By.CSS_SELECTOR, "#tracks .reference img")
    wait(browser, lambda: all(browser.execute_script(LOADED, image) for image in references), timeout=10)
    assert browser.find_element(By.CSS_SELECTOR, "#input-track h3").text.startswith(f"Input: {second.name}.flac")
    save_screenshot(browser, tmp_path / "bisep-serve-example.png")


def save_screenshot(browser, path: Path) -> None:
    """The whole page; also copied into the folder $BISEP_SCREENSHOTS when set, to look at."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1200, min(height + 120, 6000))
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(path))
    if os.environ.get("BISEP_SCREENSHOTS"):
        shutil.copyfile(path, Path(os.environ["BISEP_SCREENSHOTS"]) / path.name)
    browser.set_window_size(1200, 1000)
