"""The rendered book in a real browser (headless Chromium driven by Selenium, served from localhost).

Checks the intro and every chapter: no broken image, code outputs and figures present, solutions folded until
clicked, and the Colab launch link of each chapter pointing at that chapter's notebook in the repository named in
_config.yml. Screenshots of the intro and of one chapter go to ``_build/test-artifacts/``. It also builds the
workshop's slide decks (``tools/slides.py``, what ``make slides`` runs) and checks that reveal.js starts in each,
offline, with no console error.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them when it runs as root) and the
``selenium`` package. Without them the test is skipped, except when ``CI=true``: then it fails.
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Iterator

import nbformat
import pytest

from tools import load_timings, slides, sync_notebooks, workshop

ROOT = Path(__file__).resolve().parents[1]

ARTIFACTS = ROOT / "_build" / "test-artifacts"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,1000",
                  # nothing may leave the machine: every host but localhost fails at once (no DNS wait)
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser test cannot run in CI: {reason}")
    pytest.skip(reason)


def _find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (name if os.path.isabs(name) and os.access(name, os.X_OK) else None)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def site(built_book: Path) -> Iterator[str]:
    """Serve the built book on a free localhost port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(built_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless Chromium with a fresh profile."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install -r requirements-dev.txt)")
    chromium = _find("chromium", "chromium-browser", "/usr/lib/chromium/chromium")
    driver_path = _find("chromedriver", "/usr/lib/chromium/chromedriver")
    if not chromium or not driver_path:
        _missing("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="vgg-book-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})     # console messages, for the slides
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _open(driver, url: str) -> None:
    driver.get(url)
    driver.execute_script("window.scrollTo(0, document.body.scrollHeight);")  # let lazy images load
    driver.execute_script("window.scrollTo(0, 0);")
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const imgs = Array.from(document.images).filter(i => i.src.startsWith(location.origin));
        Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })))
            .then(() => done());""")


def _broken_local_images(driver) -> list[str]:
    """Images served by the book itself that did not load (remote ones are not checked: the test machine is
    offline; the Colab badge is the book's own)."""
    return driver.execute_script("""
        return Array.from(document.images)
            .filter(i => i.src.startsWith(location.origin) && !(i.complete && i.naturalWidth > 0))
            .map(i => i.src);""")


def test_intro_page(browser, site: str):
    _open(browser, f"{site}/book/intro.html")
    assert "VGG from Scratch" in browser.title
    assert _broken_local_images(browser) == []
    text = browser.find_element("tag name", "main").text
    assert "Who this book is for" in text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "intro.png"))
    # the table of contents links every chapter
    links = {a.get_attribute("href").split("#")[0] for a in browser.find_elements("css selector", "nav a.reference")}
    for path in NOTEBOOKS:
        assert f"{site}/notebooks/{path.stem}.html" in links, f"{path.stem} is not in the navigation"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_page(browser, site: str, path: Path):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    nb = nbformat.read(path, as_version=4)
    _open(browser, f"{site}/notebooks/{path.stem}.html")
    assert _broken_local_images(browser) == []
    if path == NOTEBOOKS[0]:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / f"{path.stem}.png"))

    # code outputs and figures: as many rendered images in outputs as the notebook has image outputs
    outputs = browser.find_elements(By.CSS_SELECTOR, "div.cell_output")
    removed = {"remove-output", "remove-cell"}
    with_output = [c for c in nb.cells if c.cell_type == "code" and c.get("outputs")
                   and not removed & set(c.metadata.get("tags", []))]
    assert len(outputs) >= len(with_output) > 0, f"{len(outputs)} rendered outputs for {len(with_output)} cells"
    images = sum(1 for c in with_output for o in c.outputs
                 if any(k.startswith("image/") for k in o.get("data", {})))
    rendered = browser.find_elements(By.CSS_SELECTOR, "div.cell_output img")
    assert len(rendered) >= images, f"{len(rendered)} figures rendered, the notebook has {images}"
    assert all(img.get_property("naturalWidth") > 0 for img in rendered)

    # the Colab badge is the book's own image, served by the site (it shows offline)
    badge = browser.find_element(By.CSS_SELECTOR, "img[alt='Open In Colab']")
    assert badge.get_attribute("src").startswith(site) and badge.get_property("naturalWidth") > 0

    # the Colab launch button (and the badge) open this very notebook from the repository in _config.yml
    colab = sync_notebooks.colab_url(path)
    hrefs = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a[href*='colab.research']")]
    assert hrefs and set(hrefs) == {colab}, f"Colab links {hrefs}, expected {colab}"
    slug, branch = sync_notebooks.repository()
    assert colab.endswith(f"/{slug}/blob/{branch}/notebooks/{path.name}")

    # solutions: folded away until the reader clicks
    solutions = browser.find_elements(By.CSS_SELECTOR, "div.cell.tag_solution")
    n_solutions = sum(1 for c in nb.cells if c.cell_type == "code" and "solution" in c.metadata.get("tags", []))
    assert len(solutions) == n_solutions
    for cell in solutions:
        code = cell.find_element(By.CSS_SELECTOR, "div.cell_input")
        assert not code.is_displayed(), "a solution is visible before it is clicked"
        toggle = cell.find_element(By.CSS_SELECTOR, "summary")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", toggle)
        toggle.click()
        try:  # the theme animates the opening
            WebDriverWait(browser, 10).until(lambda _: code.is_displayed())
        except TimeoutException:
            pytest.fail("clicking the toggle does not reveal the solution")
        assert code.text.strip(), "the revealed solution is empty"


# Every page of the site, as its address under the site's root (without .html).
PAGES = ([f"notebooks/{p.stem}" for p in NOTEBOOKS] + [f"book/{p.stem}" for p in sorted((ROOT / "book").glob("*.md"))]
         + [f"book/how-made/{p.stem}" for p in sorted((ROOT / "book" / "how-made").glob("*.md"))])
# Pages whose screenshot at 1280 px is kept (the widest tables of the book).
WIDE = {"book/fidelity-ledger", "book/instructor-guide", "notebooks/06-batch-norm-fix"}

# Tables, code and outputs wider than the text column that are neither scrollable themselves nor inside a
# scrollable box (the theme puts every table in one): cut off at the window's edge.
CUT = """
const main = document.querySelector('main') || document.body;
const right = main.getBoundingClientRect().right;
const cut = [];
if (document.documentElement.scrollWidth > document.documentElement.clientWidth + 1)
    cut.push('the whole page scrolls sideways');
for (const el of main.querySelectorAll('table, pre, div.cell_output')) {
    let box = el, scrolls = false;
    while (box && box !== main.parentElement) {
        const o = getComputedStyle(box).overflowX;
        if (o === 'auto' || o === 'scroll') { scrolls = true; break; }
        box = box.parentElement;
    }
    if (!scrolls && el.getBoundingClientRect().right > right + 1)
        cut.push(el.tagName.toLowerCase() + ' ' + el.getBoundingClientRect().width.toFixed(0) + ' px wide: '
                 + el.textContent.trim().slice(0, 50));
}
return cut;
"""


@pytest.mark.parametrize("page", PAGES)
def test_nothing_is_cut_on_a_1280_pixel_screen(browser, site: str, page: str):
    """Wide tables, code and outputs scroll inside their own box; none runs past the window's edge."""
    browser.set_window_size(1280, 800)
    _open(browser, f"{site}/{page}.html")
    assert browser.execute_script("return window.innerWidth") <= 1280
    if page in WIDE:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / f"{page.replace('/', '-')}-1280.png"))
    assert browser.execute_script(CUT) == [], f"cut at 1280 px on {page}"
    if page == PAGES[0]:            # the measurement can fail: a wide table in a box that does not scroll
        browser.execute_script("""const box = document.createElement('div');
            box.innerHTML = '<table style="width: 3000px"><tr><td>wide</td></tr></table>';
            box.firstChild.style.display = 'table';
            (document.querySelector('main') || document.body).appendChild(box);""")
        assert any("3000 px wide" in c for c in browser.execute_script(CUT))


@pytest.mark.parametrize("stem", ["06-batch-norm-fix", "10-many-gpus"])
def test_formulas_render_offline(browser, site: str, stem: str):
    """MathJax, served by the book itself, typesets every formula: no raw \\( ... \\) is left on the page."""
    from selenium.webdriver.support.ui import WebDriverWait

    _open(browser, f"{site}/notebooks/{stem}.html")
    WebDriverWait(browser, 20).until(
        lambda d: d.execute_script("return window.MathJax && MathJax.startup && MathJax.startup.promise"
                                   " ? document.querySelectorAll('mjx-container').length : 0") > 0)
    browser.execute_async_script("MathJax.startup.promise.then(arguments[arguments.length - 1]);")
    typeset = browser.execute_script("return document.querySelectorAll('mjx-container').length")
    raw = browser.execute_script("""
        return Array.from(document.querySelectorAll('main span.math, main div.math'))
            .filter(e => !e.querySelector('mjx-container')).length;""")
    assert typeset > 0 and raw == 0, f"{stem}: {typeset} formulas typeset, {raw} left raw"
    if stem.startswith("06"):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / f"{stem}-formulas.png"))


@pytest.fixture(scope="module")
def slides_site(tmp_path_factory) -> Iterator[str]:
    """Build every deck (as ``make slides`` does) into a temporary folder and serve it; yields the base URL."""
    out = tmp_path_factory.mktemp("slides")
    slides.build(out)
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


DECKS = [(plan, i) for plan in workshop.PLANS for i in range(len(plan.slots))]

# Every slide of the open deck, shown one after another, measured: the content cut at the bottom or the right of
# the slide (the slide clips what does not fit), and code, outputs or tables wider than their box.
_MEASURE_SLIDES = """
    const cut = [];
    Reveal.getSlides().forEach(slide => {
        const at = Reveal.getIndices(slide);
        Reveal.slide(at.h, at.v);
        const title = (slide.querySelector('h1, h2, h3') || slide).textContent.replace('¶', '').trim().slice(0, 60);
        if (slide.scrollHeight > slide.clientHeight + 2) cut.push(`${title}: ${slide.scrollHeight - slide.clientHeight}px too tall`);
        if (slide.scrollWidth > slide.clientWidth + 2) cut.push(`${title}: ${slide.scrollWidth - slide.clientWidth}px too wide`);
        slide.querySelectorAll('pre, table, img').forEach(e => {
            if (e.scrollWidth > e.clientWidth + 2 || e.getBoundingClientRect().right > slide.getBoundingClientRect().right + 2)
                cut.push(`${title}: a ${e.tagName.toLowerCase()} is cut at the right`);
        });
    });
    return cut;"""


@pytest.mark.parametrize("plan, index", DECKS, ids=[slides.deck_name(p, i).replace(".slides.html", "")
                                                    for p, i in DECKS])
def test_every_deck_starts_offline_and_no_slide_overflows_1280x800(browser, slides_site: str,
                                                                    plan: workshop.Plan, index: int):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",      # a 1280x800 screen, the page's own size
                            {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    browser.get_log("browser")                                  # start from an empty console
    name = slides.deck_name(plan, index)
    browser.get(f"{slides_site}/{name}")
    try:
        WebDriverWait(browser, 30).until(
            lambda d: d.execute_script("return !!(window.Reveal && Reveal.isReady && Reveal.isReady());"))
    except TimeoutException:
        pytest.fail(f"reveal.js did not start in {name}; console: {browser.get_log('browser')}")
    assert browser.execute_script("return [window.innerWidth, window.innerHeight]") == [1280, 800]
    row = workshop.plan_rows(plan, load_timings())[index]
    total = browser.execute_script("return Reveal.getTotalSlides();")
    assert 1 <= total <= slides.slide_budget(row), f"{name}: {total} slides"
    if plan.slots[index].kind == "demo":                         # every chapter of a demo has its title slide
        for stem in plan.slots[index].chapters:
            title = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4).cells[0].source
            title = title.split("\n")[0].lstrip("# ").strip()
            assert browser.execute_script(
                "return Array.from(document.querySelectorAll('.reveal .slides h1'))"
                ".some(h => h.textContent.replace('¶', '').trim() === arguments[0]);", title), title
        assert browser.execute_script("return document.querySelectorAll('aside.notes').length") > 0, \
            f"{name}: no speaker notes"
    assert browser.execute_script("return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0);")
    cut = browser.execute_script(_MEASURE_SLIDES)
    if (plan.key, index) in (("90-minutes", 4), ("90-minutes", 2)):
        browser.execute_script("Reveal.slide(2);")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / f"slides-{plan.key}-{index + 1:02d}.png"))
    assert not cut, f"{name}: {cut}"
    text = browser.execute_script("return document.querySelector('.reveal .slides').innerText")
    assert "NBVAL" not in text and "nbval" not in text, f"{name}: a test marker on a slide"
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"{name}: console errors (a missing file, a blocked network request?): {errors}"
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_missing_browser_fails_in_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        _missing("no chromium")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        _missing("no chromium")
