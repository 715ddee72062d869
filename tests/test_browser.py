"""`python app.py` as a person meets it: real HTTP, real headless Chromium, Gradio's file routes.

The app runs as a subprocess on a free loopback port with its own data directory and a working
directory holding a `.env` with a canary, so the safety tests can prove none of them leaks.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import REPO, SEED_QUESTION
from servers import free_port, server_process

pytestmark = pytest.mark.slow

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "artifacts"
CANARY = "canary-3f1c9b7e"
UPLOAD_CAP = 200_000
ARTICLE = """Lighthouse keepers return to Skerryvore <script>window.__pwned=1</script>

The Northern Lighthouse Board said on Tuesday that two keepers will return to the Skerryvore
lighthouse for the summer, the first time since it was automated in 1972.
<img src=x onerror="window.__pwned=2"> The keepers will repair the lamp and count seabirds.
"""


@dataclass
class App:
    """The running app: its URL and the private files it must never serve."""

    url: str
    workdir: Path
    data_dir: Path
    log: Path


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """`python app.py --port N` in a temp working directory; seeds ingested on first start."""
    workdir = tmp_path_factory.mktemp("app")
    (workdir / ".env").write_text(f"CANARY_SECRET={CANARY}\n", encoding="utf-8")
    data_dir = workdir / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "GRADIO_"))}
    # The page is under test here, not the model: the extractive answerer is deterministic
    # (the default model's answers are tested in test_generation.py).
    env.update(RAG_DATA_DIR=str(data_dir), RAG_MAX_UPLOAD_BYTES=str(UPLOAD_CAP),
               RAG_GENERATOR="extractive",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "app.log"
    with server_process([sys.executable, str(REPO / "app.py"), "--port", str(port)],
                        ready_url=url + "/", log=log, timeout=300, env=env, cwd=workdir,
                        group=True):
        yield App(url=url, workdir=workdir, data_dir=data_dir, log=log)


# -- Gradio's file routes serve nothing private ------------------------------------------------
def _private_urls(app: App) -> list[str]:
    env = app.workdir / ".env"
    sqlite = app.data_dir / "chroma" / "chroma.sqlite3"
    pyproject = REPO / "pyproject.toml"
    rel_env = os.path.relpath(env, tempfile.gettempdir())
    urls = []
    for target in (env, sqlite, pyproject, app.data_dir / "uploads" / "skerryvore.txt"):
        urls += [f"/gradio_api/file={target}", f"/gradio_api/file/{target}",
                 f"/file={target}", f"/gradio_api/file={str(target).replace('/', '%2F')}"]
    urls += [
        "/gradio_api/file=.env", "/gradio_api/file=./.env",
        "/gradio_api/file=data/chroma/chroma.sqlite3",
        f"/gradio_api/file={tempfile.gettempdir()}/gradio/../{rel_env}",
        "/gradio_api/file=../../../../../../etc/passwd",
        "/gradio_api/file=..%2F..%2F..%2Fetc%2Fpasswd",
        "/gradio_api/file=/proc/self/environ", "/gradio_api/file=/proc/self/cwd/.env",
        "/static/../../../../../../etc/passwd", "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/assets/..%2F..%2F..%2F..%2F..%2Fpyproject.toml", "/svelte/..%2F..%2F..%2Fpyproject.toml",
        "/gradio_api/file=" + f"http://127.0.0.1:{app.url.rsplit(':', 1)[1]}/config",
        "/gradio_api/proxy=" + f"http://127.0.0.1:{app.url.rsplit(':', 1)[1]}/config",
    ]
    return urls


def test_file_routes_serve_no_private_file(app: App) -> None:
    sqlite = app.data_dir / "chroma" / "chroma.sqlite3"
    assert sqlite.is_file() and (app.workdir / ".env").is_file()
    secrets = [CANARY.encode(), b"SQLite format 3", b"root:x:0:0", b"[build-system]",
               b"RAG_DATA_DIR="]
    with httpx.Client(timeout=20) as client:
        for path in _private_urls(app):
            for method in ("GET", "HEAD"):
                # Sent as written: no client-side normalisation of '..' or '%2F'.
                request = client.build_request(method, app.url + "/")
                request.url = request.url.copy_with(raw_path=path.encode())
                response = client.send(request)
                assert response.status_code in (400, 403, 404, 405), (method, path, response)
                assert not any(s in response.content for s in secrets), (method, path)


def test_the_file_route_still_serves_what_the_page_uploaded(app: App) -> None:
    # The 403s above are the blocks working, not a dead route: an upload is served back.
    with httpx.Client(timeout=20) as client:
        up = client.post(app.url + "/gradio_api/upload",
                         files={"files": ("note.txt", b"an uploaded note", "text/plain")})
        up.raise_for_status()
        served = client.get(f"{app.url}/gradio_api/file={up.json()[0]}")
        assert served.status_code == 200 and served.content == b"an uploaded note"
        too_big = client.post(app.url + "/gradio_api/upload",
                              files={"files": ("big.txt", b"x" * (UPLOAD_CAP + 1), "text/plain")})
        assert too_big.status_code == 413


def _call(client: httpx.Client, app: App, api: str, data: list[object]) -> str:
    event = client.post(f"{app.url}/gradio_api/call/{api}", json={"data": data})
    event.raise_for_status()
    return client.get(f"{app.url}/gradio_api/call/{api}/{event.json()['event_id']}").text


def test_the_upload_handler_takes_only_files_the_browser_uploaded(app: App) -> None:
    with httpx.Client(timeout=60) as client:
        for target in (app.workdir / ".env", app.data_dir / "chroma" / "chroma.sqlite3",
                       REPO / "README.md"):
            stream = _call(client, app, "add_articles",
                           [[{"path": str(target), "meta": {"_type": "gradio.FileData"}}]])
            assert "event: error" in stream and CANARY not in stream, target
        assert not (app.data_dir / "uploads" / ".env").exists()
        answer = _call(client, app, "ask", [f"What is the {CANARY}?", "extractive", 4, "", "",
                                            ""])
        assert "event: complete" in answer and "don't say" in answer


# -- a person in a browser ---------------------------------------------------------------------
def _chromium(tmp: Path):  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                 f"--user-data-dir={tmp / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    return driver


@pytest.mark.browser
@pytest.mark.timeout(600)
@pytest.mark.skipif(not CHROMEDRIVER.exists(), reason="needs Debian's chromium-driver")
def test_a_person_asks_follows_up_and_adds_an_article(app: App, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a driver
    ARTIFACTS.mkdir(exist_ok=True)
    driver = _chromium(tmp_path)

    def text(elem_id: str) -> str:
        return str(driver.find_element(By.ID, elem_id).text)

    def wait(condition: Callable[[], object], seconds: float = 120) -> None:
        WebDriverWait(driver, seconds, poll_frequency=0.3).until(lambda _: condition())

    def ask(question: str) -> None:
        box = driver.find_element(By.CSS_SELECTOR, "#question textarea")
        box.send_keys(question)
        driver.find_element(By.ID, "ask").click()

    try:
        driver.get(app.url + "/")
        # The first screen: the example questions from the seeds, and what is indexed.
        wait(lambda: "from 1 indexed article (" in text("status"), 60)
        examples = [b for b in driver.find_elements(By.CSS_SELECTOR, "#chat button")
                    if b.text.strip() == SEED_QUESTION]
        assert examples, "the seed question is offered as an example"
        assert "Sources appear here" in text("sources")
        assert "up to 200 KB in all" in text("upload")

        examples[0].click()  # asks it
        wait(lambda: "Answer 1" in text("sources"))
        chat = text("chat")
        assert SEED_QUESTION in chat and "Azerbaijan" in chat and "[1]" in chat
        marked = driver.find_elements(By.CSS_SELECTOR, "#cite-1-1 mark")
        assert marked and "Azerbaijan" in marked[0].text  # the cited sentence, highlighted
        assert "Bush, Putin meet over differences on missile defence" in text("sources")
        driver.save_screenshot(str(ARTIFACTS / "chat-seed.png"))

        ask("What did Gates say about it?")
        wait(lambda: "Answer 2" in text("sources"))
        assert "Searched for: What did Gates say about it? (following: " in text("chat")
        assert "Gates" in driver.find_element(By.ID, "cite-2-1").text
        # Answer 1's source is folded now; clicking its [1] marker opens it, in place.
        assert driver.find_element(By.ID, "cite-1-1").get_attribute("open") is None
        handles = driver.window_handles
        driver.find_element(By.CSS_SELECTOR, "#chat a[href$='#cite-1-1']").click()
        wait(lambda: driver.find_element(By.ID, "cite-1-1").get_attribute("open") is not None,
             10)
        assert driver.window_handles == handles
        assert driver.current_url.rstrip("/") == app.url
        driver.save_screenshot(str(ARTIFACTS / "chat-follow-up.png"))

        article = tmp_path / "skerryvore.txt"
        article.write_text(ARTICLE, encoding="utf-8")
        driver.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(article))
        wait(lambda: "Added 1" in text("ingest-report"))
        wait(lambda: "from 2 indexed articles (" in text("status"), 10)

        ask("When will the keepers return to the Skerryvore lighthouse?")
        wait(lambda: "Answer 3" in text("sources"))
        sources = text("sources")
        assert "Lighthouse keepers return to Skerryvore" in sources and "skerryvore.txt" in sources
        # The article's markup shows as text and never runs.
        assert "<script>window.__pwned=1</script>" in sources
        assert driver.execute_script("return window.__pwned === undefined")
        assert "Traceback" not in driver.find_element(By.TAG_NAME, "body").text
        driver.save_screenshot(str(ARTIFACTS / "chat-upload.png"))
        # A folded source opens when its headline is clicked.
        folded = driver.find_element(By.CSS_SELECTOR, "#cite-2-1")
        assert folded.get_attribute("open") is None
        folded.find_element(By.TAG_NAME, "summary").click()
        wait(lambda: folded.get_attribute("open") is not None, 10)
        problems = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        (ARTIFACTS / "chat-browser-log.json").write_text(json.dumps(problems, indent=2))
        assert problems == []
    finally:
        driver.quit()
        shutil.copyfile(app.log, ARTIFACTS / "chat-app.log")


@pytest.mark.browser
@pytest.mark.timeout(600)
@pytest.mark.skipif(not CHROMEDRIVER.exists(), reason="needs Debian's chromium-driver")
def test_the_conversation_survives_a_reload_until_a_new_one_starts(
        app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setenv("SE_OFFLINE", "true")
    driver = _chromium(tmp_path)

    def text(elem_id: str) -> str:
        return str(driver.find_element(By.ID, elem_id).text)

    def wait(condition: Callable[[], object], seconds: float = 120) -> None:
        WebDriverWait(driver, seconds, poll_frequency=0.3).until(lambda _: condition())

    try:
        driver.get(app.url + "/")
        wait(lambda: "indexed article" in text("status"), 60)
        box = driver.find_element(By.CSS_SELECTOR, "#question textarea")
        box.send_keys(SEED_QUESTION)
        driver.find_element(By.ID, "ask").click()
        wait(lambda: "Answer 1" in text("sources"))
        driver.refresh()
        # Back after the reload: the question, its answer and its sources.
        wait(lambda: "Azerbaijan" in text("chat") and "Answer 1" in text("sources"), 60)
        assert SEED_QUESTION in text("chat")
        # A follow-up after the reload still has the conversation to go on.
        box = driver.find_element(By.CSS_SELECTOR, "#question textarea")
        box.send_keys("What did Gates say about it?")
        driver.find_element(By.ID, "ask").click()
        wait(lambda: "Answer 2" in text("sources"))
        assert "(following: " in text("chat")
        driver.find_element(By.ID, "new-conversation").click()
        wait(lambda: "Azerbaijan" not in text("chat") and "Sources appear here" in
             text("sources"), 30)
        driver.refresh()
        wait(lambda: "indexed article" in text("status"), 60)
        assert "Azerbaijan" not in text("chat") and "Sources appear here" in text("sources")
    finally:
        driver.quit()
