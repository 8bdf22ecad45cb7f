"""Latent-graph recovery error against fused width k (Refiner, Sankaran et al., Theorem 4.1, appendix A.6).

As in the appendix: m in {64, 128, 512} modalities, three feature widths d
starting from 2m (2m, 4m, 8m), a random symmetric 0/1 adjacency A (ones on the
diagonal), linear fusion E = W A F with W (k x m), and the least-squares linear
refiner; the relative Frobenius error of the recovered adjacency, averaged over
5 seeds (draws of A, F and W), for k from m/8 to m. Writes a plot.

    python benchmarks/latent_graph.py [--seeds 5] [--out docs/latent_graph.png]
"""

from __future__ import annotations

import argparse

from mmrefine.evaluation.latent_graph import recovery_curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", default="docs/latent_graph.png")
    args = ap.parse_args()
    fractions = [1 / 8, 1 / 4, 1 / 2, 3 / 4, 7 / 8, 1.0]
    curves = {}
    print(f"mean over {args.seeds} seeds")
    print(f"{'m':>4} {'d':>5} " + " ".join(f"{'k=' + format(f, '.3g') + 'm':>10}" for f in fractions))
    for m in (64, 128, 512):
        ks = [max(1, round(f * m)) for f in fractions]
        for mult in (2, 4, 8):
            curves[(m, mult * m)] = c = recovery_curve(m, ks, seeds=args.seeds, d=mult * m)
            print(f"{m:>4} {mult * m:>5} " + " ".join(f"{c[k]:>10.3g}" for k in ks))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for (m, d), c in curves.items():
        ax.plot([k / m for k in c], list(c.values()), marker="o", label=f"m = {m}, d = {d}", alpha=0.8)
    ax.set_xlabel("fused width k / m")
    ax.set_ylabel(f"relative error of recovered A (mean of {args.seeds})")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.legend(fontsize=6, ncol=3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
