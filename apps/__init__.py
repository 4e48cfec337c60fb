"""The Panel dashboard of the Attention Workbench (entry point: ``apps/dashboard.py``).

One view per module: :mod:`~apps.data_view`, :mod:`~apps.compare_view` (with
:mod:`~apps.mechanism_panel` and :mod:`~apps.projection`), :mod:`~apps.inspect_view`,
:mod:`~apps.report_view`, :mod:`~apps.bench_view`; shared pieces: :mod:`~apps.session` (the
view-model), :mod:`~apps.maps`, :mod:`~apps.background`, :mod:`~apps.alerts`, :mod:`~apps.export`,
:mod:`~apps.url_state`, :mod:`~apps.ordering`. Apps use only ``workbench``'s public API.
"""
