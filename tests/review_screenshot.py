"""Render a PR-view markdown file to HTML and screenshot it with headless Chromium (a look, not a test).

    PYTHONPATH=$PWD PLANNER_REVIEW_MD=review.md .venv/bin/pytest -q tests/test_review_markdown.py
    python3 tests/review_screenshot.py review.md review.png

Needs the `markdown` package (Debian: python3-markdown) and `chromium` on PATH. GitHub's
alerts (`> [!WARNING]`) become styled blockquotes; everything else is python-markdown with
tables, fenced code and markdown inside <details>, close to how GitHub shows a comment.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import markdown  # type: ignore[import-not-found]

STYLE = """
body { font: 14px -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; color: #1f2328; margin: 24px; }
table { border-collapse: collapse; margin: 12px 0; }
th, td { border: 1px solid #d1d9e0; padding: 6px 12px; text-align: left; }
tr:nth-child(2n) { background: #f6f8fa; }
code { background: #eff1f3; padding: 1px 4px; border-radius: 4px; font-size: 85%; }
pre { background: #f6f8fa; padding: 12px; }
blockquote { border-left: 4px solid #9a6700; margin: 8px 0; padding: 4px 12px; }
blockquote.warning { border-color: #9a6700; } blockquote.note { border-color: #0969da; }
blockquote .alert-title { font-weight: 600; }
details { margin: 6px 0; } sub { color: #59636e; }
"""


def _alerts(text: str) -> str:
    """GitHub alerts (`> [!WARNING]` then `> - item` lines) as HTML blockquotes, as GitHub draws them."""

    def block(match: re.Match[str]) -> str:
        kind = match.group(1)
        items = [line.removeprefix("> - ") for line in match.group(2).splitlines() if line.startswith("> - ")]
        lis = "".join(f"<li>{_inline(item)}</li>" for item in items)
        title = f'<p class="alert-title">{kind.title()}</p>'
        return f'<blockquote class="{kind.lower()}">{title}<ul>{lis}</ul></blockquote>\n'

    return re.sub(r"^> \[!(WARNING|NOTE)\]\n((?:> .*\n)*)", block, text, flags=re.MULTILINE)


def _inline(text: str) -> str:
    html = markdown.markdown(text)
    return html.removeprefix("<p>").removesuffix("</p>")


def to_html(text: str) -> str:
    text = _alerts(text.replace("<details>", '<details markdown="1">'))
    body = markdown.markdown(text, extensions=["tables", "fenced_code", "md_in_html"])
    return f"<!doctype html><meta charset='utf-8'><style>{STYLE}</style><body>{body}</body>"


def main(source: str, png: str) -> int:
    html = to_html(Path(source).read_text(encoding="utf-8"))
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("chromium is not installed", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "review.html"
        page.write_text(html, encoding="utf-8")
        Path(png).with_suffix(".html").write_text(html, encoding="utf-8")
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={tmp}/profile",
                "--window-size=1600,1100",
                f"--screenshot={png}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
