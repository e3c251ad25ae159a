"""Figures people look at instead of reading numbers (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _image(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    side = int(round(np.sqrt(x.size)))
    return x.reshape(side, side) if side * side == x.size else x.reshape(x.shape[0], -1)


def _save(plt, fig, path: str | Path) -> Path:
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def adversarial_figure(result, path: str | Path) -> Path:
    """original | changed pixels | adversarial, with labels and the distance in the title."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.4))
    name = lambda l: result.classes[l] if l is not None and l < len(result.classes) else l  # noqa: E731
    orig = _image(result.image)
    axes[0].imshow(orig, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(f"original: {name(result.original_label)}")
    if result.adversarial is not None:
        delta = _image(result.perturbation)
        lim = max(float(np.abs(delta).max()), 1e-6)
        im = axes[1].imshow(delta, cmap="RdBu_r", vmin=-lim, vmax=lim)
        fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
        axes[1].set_title(f"changed pixels: {int(np.count_nonzero(delta))}")
        axes[2].imshow(_image(result.adversarial), cmap="gray", vmin=0, vmax=1)
        axes[2].set_title(f"adversarial: {name(result.adversarial_label)}")
    else:
        for ax in axes[1:]:
            ax.text(0.5, 0.5, "no adversarial\nexample", ha="center", va="center")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    unit = {"card": "pixels", "l1": "L1", "l2": "squared L2", "linf": "L∞"}[result.norm]
    dist = "—" if result.objective is None else f"{result.objective:.6g}"
    proof = "proven minimal" if result.minimal else f"{result.status}, bound {result.bound}"
    target = "" if result.target is None else f", target {name(result.target)}"
    fig.suptitle(f"{result.model}: min {unit} = {dist} ({proof}{target})", fontsize=10)
    return _save(plt, fig, path)


def certify_figure(result, path: str | Path) -> Path:
    """A certify answer (a :class:`~verify.results.CertifyResult`): original | changed pixels |
    counterexample when one was found; otherwise the original beside the verdict."""
    plt = _plt()
    name = lambda l: result.classes[l] if l is not None and l < len(result.classes) else l  # noqa: E731
    orig = _image(result.image)
    cex = result.counterexample
    fig, axes = plt.subplots(1, 3 if cex is not None else 2, figsize=(9 if cex is not None else 5.6, 3.4))
    axes[0].imshow(orig, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(f"original: {name(result.original_label)}")
    if cex is not None:
        delta = _image(np.asarray(cex, dtype=np.float64) - np.asarray(result.image, dtype=np.float64))
        lim = max(float(np.abs(delta).max()), 1e-6)
        im = axes[1].imshow(delta, cmap="RdBu_r", vmin=-lim, vmax=lim)
        fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
        axes[1].set_title(f"changed pixels: {int(np.count_nonzero(delta))}")
        axes[2].imshow(_image(cex), cmap="gray", vmin=0, vmax=1)
        axes[2].set_title(f"counterexample: {name(result.adversarial_label)}")
    else:
        text = {"verified": "VERIFIED\nno input in the region\nchanges the label",
                "unknown": "UNKNOWN\nundecided within\nthe time limit"}.get(
                    result.status, result.status.upper())
        axes[1].text(0.5, 0.5, text, ha="center", va="center", fontsize=11)
        axes[1].set_frame_on(False)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    how = f" by {result.method}" if result.method else ""
    fig.suptitle(f"{result.model}, label {name(result.original_label)} within {result.region}: "
                 f"{result.status}{how}", fontsize=10)
    return _save(plt, fig, path)


#: Colours of the explanation figure: kept pixels that are ink (bright) or background (dark).
KEPT_INK = (0.90, 0.30, 0.05)
KEPT_DARK = (0.10, 0.45, 0.90)


def _explanation_rgb(orig: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image faded to a light grey wash, with the kept pixels drawn in colour (ink in
    orange, background in blue, both with the pixel's brightness), so the explanation stands
    out and the freed pixels recede."""
    rgb = np.repeat((0.55 + 0.35 * orig)[..., None], 3, axis=-1)        # freed: faded image
    ink = np.asarray(KEPT_INK)[None, :]
    dark = np.asarray(KEPT_DARK)[None, :]
    v = orig[mask][:, None]
    rgb[mask] = np.where(v >= 0.5, ink * (0.55 + 0.45 * v), dark * (0.55 + 0.45 * (1 - v)))
    return rgb


def explanation_figure(result, path: str | Path) -> Path:
    """original | the explanation: its kept pixels in colour over the faded image, with a
    legend (and the minimum explanation beside it when one was searched for)."""
    from matplotlib.patches import Patch

    plt = _plt()
    minimum = result.minimum if result.minimum and result.minimum.get("pixels") is not None else None
    cols = 3 if minimum is not None else 2
    fig, axes = plt.subplots(1, cols, figsize=(3.3 * cols, 4.4))
    name = result.classes[result.original_label] if result.original_label < len(result.classes) \
        else result.original_label
    orig = _image(result.image)
    mask = _image(result.mask.astype(np.float64)) > 0.5
    axes[0].imshow(orig, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(f"original: {name}", fontsize=10)
    axes[1].imshow(_explanation_rgb(orig, mask), interpolation="nearest")
    proof = "subset-minimal, proven" if result.minimal else f"sound, not proven minimal ({result.status})"
    axes[1].set_title(f"explanation: {result.size} of {orig.size} pixels\n({proof})", fontsize=9)
    if minimum is not None:
        m = np.zeros(orig.size, dtype=bool)
        m[np.asarray(minimum["pixels"], dtype=int)] = True
        axes[2].imshow(_explanation_rgb(orig, m.reshape(orig.shape)), interpolation="nearest")
        how = "proven minimum" if minimum["status"] == "minimum" else \
            f"best found, lower bound {minimum['lower_bound']}"
        axes[2].set_title(f"minimum explanation: {minimum['size']} pixels\n({how})", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    rng = "any value in [0, 1]" if result.eps is None else f"any value within ±{result.eps:g}"
    handles = [Patch(color=KEPT_INK, label="kept, ink: held at its value"),
               Patch(color=KEPT_DARK, label="kept, background: held at its value"),
               Patch(color=(0.55, 0.55, 0.55), label=f"freed (faded image): may take {rng}")]
    fig.legend(handles=handles, loc="lower center", ncol=1, fontsize=8, frameon=False)
    fig.suptitle(f"{result.model}: the kept pixels alone force the label '{name}'", fontsize=10)
    fig.tight_layout(rect=(0, 0.15, 1, 0.94))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


UNITS = {"card": "pixels", "l1": "L1", "l2": "squared L2", "linf": "L∞"}


def side_by_side_figure(image, panels: list[tuple[str, np.ndarray | None]], title: str,
                        path: str | Path) -> Path:
    """The original, then one adversarial image per panel (``(caption, image or None)``),
    with the change below each (red: brighter, blue: darker)."""
    plt = _plt()
    cols = 1 + len(panels)
    fig, axes = plt.subplots(2, cols, figsize=(2.3 * cols, 5.0), squeeze=False)
    orig = _image(image)
    axes[0, 0].imshow(orig, cmap="gray", vmin=0, vmax=1)
    axes[0, 0].set_title("original", fontsize=8)
    axes[1, 0].axis("off")
    for j, (caption, adv) in enumerate(panels, start=1):
        axes[0, j].set_title(caption, fontsize=8)
        if adv is None:
            axes[0, j].text(0.5, 0.5, "failed", ha="center", va="center")
            axes[1, j].axis("off")
            continue
        axes[0, j].imshow(_image(adv), cmap="gray", vmin=0, vmax=1)
        delta = _image(np.asarray(adv, dtype=np.float64) - np.asarray(image, dtype=np.float64))
        lim = max(float(np.abs(delta).max()), 1e-6)
        axes[1, j].imshow(delta, cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[1, j].set_xlabel(f"change (±{lim:.2g})", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    return _save(plt, fig, path)


def comparison_figure(result, path: str | Path) -> Path:
    """The exact minimum beside each attack's example (a :class:`ComparisonResult`)."""
    exact = result.exact
    name = lambda l: result.classes[l] if l is not None and l < len(result.classes) else l  # noqa: E731
    proof = "proven" if exact.minimal else f"{exact.status}, bound {exact.bound}"
    dist = "—" if exact.objective is None else f"{exact.objective:.4g}"
    panels = [(f"exact: {dist} ({proof})\n→ {name(exact.adversarial_label)}", exact.adversarial)]
    for a, row in zip(result.attacks, result.rows()):
        if row["success"]:
            ratio = "" if row["ratio"] is None else f", ×{row['ratio']:.2f}"
            panels.append((f"{a.method}: {row['distance']:.4g}{ratio}\n→ {name(row['adversarial_label'])}",
                           a.adversarial[0]))
        else:
            panels.append((f"{a.method}: failed", None))
    title = (f"{result.model}, label {name(exact.original_label)}: smallest {UNITS[result.norm]} "
             f"change, exact vs attacks (ratio attack / exact)")
    return side_by_side_figure(exact.image, panels, title, path)


def attack_figure(result, path: str | Path, index: int = 0) -> Path:
    """One image of an attack batch (an :class:`AttackResult`) beside its adversarial example."""
    name = lambda l: result.classes[l] if l < len(result.classes) else l  # noqa: E731
    i = index
    if result.success[i]:
        panel = (f"{result.method}: {name(result.labels[i])} → {name(result.adversarial_labels[i])}\n"
                 f"{UNITS[result.norm]} {result.distances[i]:.4g}", result.adversarial[i])
    else:
        panel = (f"{result.method}: failed", None)
    eps = "smallest ε found" if result.eps is None else f"ε = {result.eps:g}"
    title = f"{result.model}: {result.method} ({result.norm}, {eps}), re-checked by the model"
    return side_by_side_figure(result.images[i], [panel], title, path)
