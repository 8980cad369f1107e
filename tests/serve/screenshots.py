"""Screenshots for the README, from a real server and headless Chromium:

  .venv/bin/python tests/serve/screenshots.py [--model default] [--index DIR] [--out docs/screenshots]

writes chat-desktop.png and chat-narrow.png (the chat page at 1200 and 390 CSS pixels, one answered
question with its first citation opened) and report.png (the first screen of docs/example-report/report.md
rendered to HTML). Without --index it ingests the serve tests' small corpus (without the planted
document) with the embedded retriever; the default generator is the embedded SmolLM2-135M-Instruct.
Needs Debian's chromium and chromium-driver, and the dev extra (selenium, markdown).
"""

from __future__ import annotations

import argparse
import html
import secrets
import sys
import tempfile
from pathlib import Path

from browser import ask, missing_browser, start_chromium, wait_ready
from serve_helpers import DOCS, write_docs

REPO = Path(__file__).resolve().parents[2]
QUESTION = "What is the capital of Avalon?"
SIZES = {"chat-desktop.png": (1200, 820), "chat-narrow.png": (390, 844)}
REPORT_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem;
       line-height: 1.5; color: #1b1f24; }
table { border-collapse: collapse; font-size: .85rem; display: block; overflow-x: auto; } th, td { border: 1px solid #d0d7de; padding: .2rem .4rem; }
img { max-width: 100%; } code { background: #f6f8fa; padding: 0 .2rem; }
"""


def build_index(work: Path) -> Path:
    from ingest import ingest
    from retriever import Encoder

    docs = write_docs(work / "docs.jsonl", [d for d in DOCS if d["id"] != "planted"])
    ingest([docs], work / "index", encoder=Encoder(), show_progress=False)
    return work / "index"


def shoot_chat(model: str, index: Path, out: Path) -> None:
    from selenium.webdriver.common.by import By

    from serve import start_server

    key = secrets.token_urlsafe(16)
    with start_server(model, index, api_key=key, extra_args=["--poll-interval", "0"]) as srv:
        for name, (width, height) in SIZES.items():
            driver = start_chromium(width, height)
            try:
                driver.get(srv.url + "/")
                wait_ready(driver)
                turn = ask(driver, key, QUESTION)
                driver.execute_script(
                    "arguments[0].open = true", turn.find_element(By.CSS_SELECTOR, "details")
                )
                driver.execute_script("window.scrollTo(0, 0); document.getElementById('question').focus()")
                driver.save_screenshot(str(out / name))
            finally:
                driver.quit()
            print(f"wrote {out / name}")


def shoot_report(report_md: Path, out: Path, work: Path) -> None:
    import markdown

    body = markdown.markdown(report_md.read_text(encoding="utf-8"), extensions=["tables", "fenced_code"])
    page = work / "report.html"
    page.write_text(
        f'<!doctype html><html><head><meta charset="utf-8"><base href="{report_md.parent.as_uri()}/">'
        f"<title>{html.escape(report_md.name)}</title><style>{REPORT_CSS}</style></head><body>{body}</body></html>",
        encoding="utf-8",
    )
    driver = start_chromium(1200, 900)
    try:
        driver.get(page.as_uri())
        driver.save_screenshot(str(out / "report.png"))
    finally:
        driver.quit()
    print(f"wrote {out / 'report.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default", help="generator folder, or `default`")
    parser.add_argument("--index", type=Path, help="index folder (default: a small one built here)")
    parser.add_argument("--report", type=Path, default=REPO / "docs/example-report/report.md")
    parser.add_argument("--out", type=Path, default=REPO / "docs/screenshots")
    args = parser.parse_args()
    why = missing_browser()
    if why:
        sys.exit(f"error: {why}")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ragtune-screenshots-") as tmp:
        work = Path(tmp)
        shoot_report(args.report, args.out, work)
        shoot_chat(args.model, args.index or build_index(work), args.out)


if __name__ == "__main__":
    main()
