"""Load check of the dashboard: concurrent browser sessions against one ``panel serve``.

Run from the repository root (needs the app and test extras and ``/usr/bin/chromium``)::

    python -m benchmarks.load_dashboard                 # 10 sessions
    python -m benchmarks.load_dashboard --sessions 4 --json out.json

Each session (its own browser context, so its own Bokeh session) opens the dashboard, waits for
the demo maps, loads another demo from the Data tab (``tree``, ``sequence``, ``digits``,
``clusters`` in turn, at its default size), waits for the new maps, then switches the second
Compare panel through two other mechanisms, waiting for each map. Checked: every step finishes,
no session shows an error message, no browser console error, the server stays up and its log
holds no traceback. Reported: per-session wall time, the server's peak RSS (``VmHWM`` of the
server process, read from ``/proc``) and its RSS before the sessions. Not a timed test: it is
not part of ``make test``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.browser import ARGS, CHROMIUM, TEXT_JS

ROOT = Path(__file__).resolve().parents[1]
DEMOS = ("tree", "sequence", "digits", "clusters")
SWITCHES = (("linear", "local_global"), ("flash", "multi_head"), ("lorentz_cascade", "linear"),
            ("mixed_curvature", "flash"))
STEP_S = 300.0

def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _app_tracebacks(log: str) -> int:
    """Tracebacks with a frame in the app or the library (``apps/``, ``workbench/``, ``kernels/``).

    Tornado/Bokeh tracebacks about a websocket closed by a departing browser
    (``WebSocketClosedError``, ``StreamClosedError``, a patch for a destroyed session) have no
    such frame: they are teardown noise, not server errors.
    """
    ours = tuple(f'File "{ROOT}/{d}/' for d in ("apps", "workbench", "kernels"))
    return sum(any(m in block for m in ours) for block in log.split("Traceback (most recent call last):")[1:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _texts(page, selector: str) -> list[str]:
    return await page.locator(selector).evaluate_all(TEXT_JS)


async def _wait(page, selector: str, predicate, what: str, timeout: float = STEP_S) -> list[str]:
    deadline = time.perf_counter() + timeout
    while True:
        texts = await _texts(page, selector)
        if predicate(texts):
            return texts
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what}: {texts}")
        await asyncio.sleep(0.1)


async def _session(browser, url: str, i: int) -> dict:
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await ctx.new_page()
    page.set_default_timeout(STEP_S * 1000)  # ten sessions on 2 cores: a first tab draw can take > 30 s
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    stage = ["open"]
    page.on("requestfailed", lambda r: errors.append(f"{stage[0]}: request failed {r.url[:160]}"))
    t0 = time.perf_counter()
    steps: dict[str, float] = {}
    try:
        await page.goto(url, timeout=STEP_S * 1000)
        await _wait(page, ".wb-run-status", lambda t: len(t) == 2 and all(s.startswith("#1") for s in t),
                    "demo maps")
        steps["first_maps_s"] = time.perf_counter() - t0
        demo = DEMOS[i % len(DEMOS)]
        stage[0] = "load demo"
        await page.locator(".bk-tab", has_text="Data").first.click()
        await page.locator(".wb-demo-select select").select_option(demo)
        await page.locator(".wb-load-demo button").click()
        await _wait(page, ".wb-messages .alert", lambda t: bool(t) and f"demo '{demo}'" in t[0], f"demo {demo}")
        await page.locator(".bk-tab", has_text="Compare").first.click()
        await _wait(page, ".wb-run-status", lambda t: len(t) == 2 and all(s.startswith("#2") for s in t),
                    "maps of the new demo")
        steps["demo_loaded_s"] = time.perf_counter() - t0
        stage[0] = "switch mechanisms"
        for j, name in enumerate(SWITCHES[i % len(SWITCHES)]):
            await page.locator(".wb-panel-1 .wb-mechanism-select select").select_option(name)
            await _wait(page, ".wb-run-status", lambda t, j=j: len(t) == 2 and t[1].startswith(f"#{3 + j}"),
                        f"map of {name}")
        steps["switched_s"] = time.perf_counter() - t0
        stage[0] = "done"
        danger = await _texts(page, ".wb-messages .alert-danger")
        return {"session": i, "demo": demo, "ok": not danger and not errors, "errors": danger + errors, **steps}
    except Exception as exc:  # reported, not raised: the other sessions go on
        return {"session": i, "ok": False, "errors": [f"{type(exc).__name__}: {exc}"] + errors, **steps}
    finally:
        await ctx.close()


async def _run(url: str, n: int) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            return await asyncio.gather(*(_session(browser, url, i) for i in range(n)))
        finally:
            await browser.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10, help="concurrent browser sessions (default 10)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 2
    port = _free_port()
    url = f"http://127.0.0.1:{port}/dashboard"
    log_path = ROOT / "benchmarks" / "_out" / "load_dashboard_server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "panel", "serve", "apps/dashboard.py", "--setup", "apps/preload.py",
             "--address", "127.0.0.1", "--port", str(port), "--allow-websocket-origin", f"127.0.0.1:{port}",
             "--unused-session-lifetime", "60000"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if server.poll() is not None or time.perf_counter() - started > 120:
                        print(log_path.read_text()[-3000:], file=sys.stderr)
                        return 1
                    time.sleep(0.2)
            rss_idle = _kib(server.pid, "VmRSS")
            load_before = os.getloadavg()
            t0 = time.perf_counter()
            results = asyncio.run(_run(url, args.sessions))
            wall = time.perf_counter() - t0
            alive = server.poll() is None
            peak = _kib(server.pid, "VmHWM") if alive else None
            rss_after = _kib(server.pid, "VmRSS") if alive else None
        finally:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
    server_log = log_path.read_text()
    tracebacks = _app_tracebacks(server_log)
    ok = alive and tracebacks == 0 and all(r["ok"] for r in results)
    summary = {
        "sessions": args.sessions, "ok": ok, "server_alive": alive, "server_tracebacks": tracebacks,
        "server_rss_idle_mib": round(rss_idle / 1024, 1),
        "server_peak_rss_mib": None if peak is None else round(peak / 1024, 1),
        "server_rss_after_mib": None if rss_after is None else round(rss_after / 1024, 1),
        "wall_s": round(wall, 1), "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "cpus": os.cpu_count(), "python": platform.python_version(), "results": results,
    }
    for r in results:
        steps = ", ".join(f"{k} {r[k]:.1f}" for k in ("first_maps_s", "demo_loaded_s", "switched_s") if k in r)
        print(f"session {r['session']:2d} {r.get('demo', '?'):9s} {'ok' if r['ok'] else 'FAILED'}  {steps}"
              + ("" if r["ok"] else f"  {sorted(set(r['errors']))[:6]}"))
    print(f"\n{args.sessions} concurrent sessions: {'all ok' if ok else 'FAILURES'}; wall {wall:.1f} s; "
          f"server RSS idle {summary['server_rss_idle_mib']} MiB, peak {summary['server_peak_rss_mib']} MiB, "
          f"after {summary['server_rss_after_mib']} MiB; tracebacks in the server log: {tracebacks}; "
          f"load average before {load_before[0]:.2f}, {os.cpu_count()} cores")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
