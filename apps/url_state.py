"""App state in the URL: ``workbench.compare.AppState`` ⇄ the page's query string.

On load the query string is parsed (``AppState.from_query`` ignores anything malformed); after a
change the URL is replaced (no reload, no history entry per click) so that copying the link
reproduces the view: data set, key set, mechanisms, their non-default parameters, data options
and the selected query.
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode

import panel as pn

from workbench.compare import AppState


def state_from_location(location=None) -> AppState:
    """The :class:`AppState` encoded in the page URL (defaults where absent or invalid)."""
    location = location if location is not None else pn.state.location
    search = (getattr(location, "search", "") or "").lstrip("?")
    return AppState.from_query({k: v[-1] for k, v in parse_qs(search, keep_blank_values=True).items()})


def query_string(state: AppState) -> str:
    """``?data=…&m=…`` for ``state`` (stable order, percent-encoded)."""
    return "?" + urlencode(sorted(state.to_query().items()))


def write_location(state: AppState, location=None) -> str:
    """Put ``state`` into the page URL; returns the query string written."""
    location = location if location is not None else pn.state.location
    search = query_string(state)
    if location is not None and getattr(location, "search", None) != search:
        location.search = search
    return search
