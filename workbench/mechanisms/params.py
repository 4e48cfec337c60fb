"""Parameter declarations shared by several mechanisms (one definition, same doc everywhere)."""
from __future__ import annotations

import param


def causal() -> param.Boolean:
    return param.Boolean(
        default=False,
        doc="Causal masking as in SDPA: query i attends keys j <= i + causal_offset.",
    )


def causal_offset() -> param.Integer:
    return param.Integer(
        default=0, bounds=(None, None),
        doc="Key position of query 0 under causal masking (0 = SDPA's top-left alignment; for a "
            "single query, its position in the key sequence).",
    )


def scale() -> param.Number:
    return param.Number(
        default=None, allow_None=True, bounds=(0, None), inclusive_bounds=(False, True),
        doc="Logit scale s in softmax(s * q.k); None means 1/sqrt(d) of the (head) dimension.",
    )


def seed() -> param.Integer:
    return param.Integer(
        default=0, bounds=(0, None),
        doc="Seed of every random draw of this mechanism; same seed, same result.",
    )


def temperature(doc: str) -> param.Number:
    """The softmax temperature ``T > 0``, default 1 (what calibration fits); ``doc`` says where ``T`` divides."""
    return param.Number(default=1.0, bounds=(0, None), inclusive_bounds=(False, True), doc=doc)
