"""A served dashboard never points the browser at a CDN (the browser test also fails on any request to
another host): Panel's fallback for a document without ``dist_url`` is this server's copy."""
from __future__ import annotations

import panel.io.resources as res
import panel.reactive as reactive
from bokeh.models import ImportedStyleSheet

from apps.app import _patch_cdn_fallback


def test_the_cdn_fallback_becomes_this_servers_copy(monkeypatch):
    monkeypatch.setattr(res, "patch_stylesheet", res.patch_stylesheet)  # restored after the test
    monkeypatch.setattr(reactive, "patch_stylesheet", reactive.patch_stylesheet)
    before = ImportedStyleSheet(url=f"{res.CDN_DIST}css/listpanel.css")
    res.patch_stylesheet(before, res.CDN_DIST)
    assert before.url.startswith("https://cdn.holoviz.org")  # Panel's own behaviour: the CDN
    _patch_cdn_fallback()
    _patch_cdn_fallback()  # once per process: a second call wraps nothing twice
    for patch in (res.patch_stylesheet, reactive.patch_stylesheet):
        sheet = ImportedStyleSheet(url=f"{res.CDN_DIST}css/loading.css")
        patch(sheet, res.CDN_DIST)
        assert sheet.url.startswith(res.LOCAL_DIST) and "cdn" not in sheet.url, sheet.url
    sheet = ImportedStyleSheet(url=f"{res.CDN_DIST}css/listpanel.css")
    res.patch_stylesheet(sheet, "/app/static/extensions/panel/")  # a page's own dist_url still wins
    assert sheet.url.startswith("/app/static/extensions/panel/css/listpanel.css")
