"""``python -m benchmarks.gpu_accuracy`` (the GPU bodies on real embeddings, through OpenCL) runs and its
every row keeps the tests' rule: the body's error at most twice the float32 reference's, plus rounding."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.opencl


def test_the_gpu_accuracy_table(opencl, capsys):
    from benchmarks.gpu_accuracy import main, rows

    table = rows()
    assert len(table) == 7
    assert all(err <= 2 * plain + 2e-6 for _, _, err, plain in table), table
    main([])
    printed = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("| ") for line in printed) == 8  # the header and the seven rows
