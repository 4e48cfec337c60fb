"""Data for the dashboard and the report: load embedding files, demo sets, prepare inputs, build graphs.

>>> from workbench.data import load_demo, select_queries
>>> ds = load_demo("clusters")
>>> ds.x.shape, select_queries(ds, "subset", n=10).shape
((1200, 32), (10,))

Not imported by ``import workbench`` (it stays light); heavy packages (pyarrow, safetensors,
scikit-learn, hnswlib, umap) are imported only by the functions that need them.
"""
from workbench.data.dataset import Dataset, check_pair, validate_embeddings
from workbench.data.demos import DEFAULT_DEMO, DEMOS, load_demo
from workbench.data.lazy import LAZY_FORMATS, open_lazy
from workbench.data.loaders import (DEFAULT_MAX_BYTES, ENV_MAX_PATH_MB, ENV_MAX_UPLOAD_MB, FORMATS, check_size,
                                    load_embeddings, max_path_bytes, max_upload_bytes)
from workbench.data.prepare import (GRAPH_KINDS, NORMALISATIONS, QUERY_SELECTIONS, available_projections, graph_for,
                                    normalise, pca, project_2d, select_queries, transform)

__all__ = [
    "Dataset", "check_pair", "validate_embeddings",
    "DEMOS", "DEFAULT_DEMO", "load_demo",
    "DEFAULT_MAX_BYTES", "ENV_MAX_UPLOAD_MB", "ENV_MAX_PATH_MB", "FORMATS", "check_size", "load_embeddings",
    "max_upload_bytes",
    "max_path_bytes", "LAZY_FORMATS", "open_lazy",
    "GRAPH_KINDS", "NORMALISATIONS", "QUERY_SELECTIONS", "available_projections", "graph_for", "normalise", "pca",
    "project_2d", "select_queries", "transform",
]
