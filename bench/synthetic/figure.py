"""Side-by-side figure of synthetic impressions and real images, to judge the generator
by eye (``docs/img/synthetic_vs_fvc2002db4.png`` is made with it, by ``python -m
benchmarks.figures synthetic``)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from bench.datasets.base import read_grayscale
from bench.synthetic.generate import make_config, make_finger


def comparison_figure(
    out_path: str | Path,
    real_images: Sequence[str | Path],
    *,
    fingers: Sequence[int] = (1, 2, 3, 4),
    seed: int = 0,
    difficulty: float | str = "default",
    real_label: str = "FVC2002 DB4_B (SFinGe v2.51)",
    dpi: int = 110,
) -> Path:
    """Write a two-row figure: the first impression of ``fingers`` (generated at the
    size of the first real image) above ``real_images``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real = [read_grayscale(Path(p)) for p in real_images]
    height, width = real[0].shape
    config = make_config(fingers=max(fingers), width=width, height=height, seed=seed, difficulty=difficulty)
    synthetic = []
    for f in fingers:
        master, (imp,) = make_finger(config, f, [1])
        synthetic.append((imp.image, f"synthetic {f}_1 ({master.fingerprint_class.replace('_', ' ')})"))
    n = max(len(synthetic), len(real))
    fig, axes = plt.subplots(2, n, figsize=(n * width / 100 + 0.4, 2 * height / 100 + 0.9), squeeze=False)
    rows = [synthetic, [(img, f"{real_label}: {Path(p).stem}") for img, p in zip(real, real_images)]]
    for r, row in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(row):
                img, title = row[c]
                ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
                ax.set_title(title, fontsize=7)
    fig.suptitle(
        f"Top: bench.synthetic, difficulty {config.difficulty:g}, seed {seed}, {width}x{height} at 500 dpi. "
        f"Bottom: {real_label}.",
        fontsize=8,
    )
    fig.tight_layout()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    # Everything in the figure is grey: store one channel (a third of the size).
    import cv2

    grey = read_grayscale(out)
    cv2.imwrite(str(out), grey, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return out

