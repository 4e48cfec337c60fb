"""Dashboard tests: `apps/` sits next to `workbench/` (not an installed package), so the repository
root goes on sys.path; the whole directory skips cleanly where the app extras are not installed."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

for _module in ("panel", "holoviews", "datashader"):
    pytest.importorskip(_module, reason=f"the dashboard tests need the app extras ({_module}): pip install -e '.[app]'")

ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A screenshot of the page when a browser test fails (tests/artifacts/failed-<test>.png)."""
    outcome = yield
    report = outcome.get_result()
    page = getattr(item, "funcargs", {}).get("app")
    if report.when == "call" and report.failed and hasattr(page, "shot"):
        try:
            page.shot(f"failed-{item.name}")
        except Exception:  # the page may be gone; the failure itself is what matters
            pass
