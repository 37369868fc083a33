"""Learning-curve figure (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_history(history: list[dict[str, float]], path: str | Path, title: str = "") -> Path:
    """Loss (left) and accuracy (right, when present) per epoch, saved as PNG."""
    epochs = [h["epoch"] for h in history]
    has_accuracy = any("train_accuracy" in h for h in history)
    fig, axes = plt.subplots(1, 2 if has_accuracy else 1, figsize=(10 if has_accuracy else 5, 3.6), squeeze=False)
    for split in ("train", "test"):
        axes[0, 0].plot(epochs, [h[f"{split}_loss"] for h in history], marker="o", ms=3, label=split)
        if has_accuracy:
            axes[0, 1].plot(epochs, [h[f"{split}_accuracy"] for h in history], marker="o", ms=3, label=split)
    axes[0, 0].set(xlabel="epoch", ylabel="loss", yscale="log")
    if has_accuracy:
        axes[0, 1].set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    for ax in axes[0]:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
