"""Print the conformance table: every vector's reason from the Python verifier and from
the checkpoint page in headless Chromium (the same run as the browser test).

    .venv/bin/python -m tests.browser.conformance
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.browser.checkpoint_helpers import checkpoint_server, conformance_table
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch, checkpoint_server(Path(scratch)) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            table = conformance_table(browser.new_page(), server.url)
        finally:
            browser.close()
    print("| vector | Python reason | page data-reason | page data-level | agree |")
    print("|---|---|---|---|---|")
    for name, python, page in table:
        print(f"| {name} | {python[0]} | {page[0]} | {page[1] or '-'} | {'yes' if python == page else 'NO'} |")
    print(f"\n{sum((p == q) for _, p, q in table)} of {len(table)} agree")


if __name__ == "__main__":
    main()
