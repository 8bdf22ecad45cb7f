"""Latent-graph recovery error against fused width k (Refiner, Sankaran et al., Theorem 4.1, appendix A.6).

For m in {64, 128, 512}: a random symmetric 0/1 adjacency A (ones on the
diagonal), features of width d = 2m, linear fusion E = W A F with W (k x m),
and the least-squares linear refiner; prints the relative Frobenius error of
the recovered adjacency for k from m/8 to m, and writes a plot.

    python benchmarks/latent_graph.py [--out docs/latent_graph.png]
"""

from __future__ import annotations

import argparse

from mmrefine.evaluation.latent_graph import recovery_curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/latent_graph.png")
    args = ap.parse_args()
    fractions = [1 / 8, 1 / 4, 1 / 2, 3 / 4, 7 / 8, 1.0]
    curves = {}
    print(f"{'m':>4} " + " ".join(f"{'k=' + format(f, '.3g') + 'm':>10}" for f in fractions))
    for m in (64, 128, 512):
        ks = [max(1, round(f * m)) for f in fractions]
        curves[m] = recovery_curve(m, ks)
        print(f"{m:>4} " + " ".join(f"{curves[m][k]:>10.3g}" for k in ks))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for m, c in curves.items():
        ax.plot([k / m for k in c], list(c.values()), marker="o", label=f"m = {m}")
    ax.set_xlabel("fused width k / m")
    ax.set_ylabel("relative error of recovered A")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
