"""What the browser tests and the dashboard load check share: Debian's Chromium and how to read Panel's text.

Panel renders each component inside a shadow root; :data:`TEXT_JS` (for Playwright's
``locator.evaluate_all``) returns the visible text of each match from inside it, without the
stylesheets.
"""
from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
#: Headless, no sandbox (root in CI), no GPU, and nothing that would try to reach the network.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

TEXT_JS = """els => els.map(e => {
    const root = e.shadowRoot;
    if (!root) return e.innerText || "";
    return Array.from(root.children).filter(c => !["STYLE", "LINK", "SCRIPT"].includes(c.tagName))
        .map(c => c.innerText || "").join("\\n").trim();
})"""
