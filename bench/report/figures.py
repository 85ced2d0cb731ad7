"""Figure helpers shared by every bench figure: a headless pyplot, labels placed without collisions, a wrapped
provenance footer, and saving PNG + PDF with nothing cut off."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

__all__ = ["pyplot", "save_figure", "add_footer", "place_labels", "label_lines_right", "spread", "distinct_styles",
           "label_collisions"]


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def add_footer(fig, text: str, fontsize: float = 5.5) -> None:
    """The provenance line under the axes, wrapped to the figure's width (never cut off: saved with a tight
    bounding box, the footer's lines are part of the image)."""
    width_pt = fig.get_figwidth() * 72
    chars = max(40, int(width_pt / (0.5 * fontsize)))      # ~0.5 em per character in the default sans font
    fig.text(0.01, 0.0, "\n".join(textwrap.wrap(text, chars)), fontsize=fontsize, color="dimgrey", va="top",
             ha="left")


# adjustText settings tried in turn until no two labels overlap: gentle first (labels stay near their points)
_PLACEMENT_ITERATIONS = 300
_PLACEMENT_ATTEMPTS = ({"expand": (1.1, 1.3)},
                       {"expand": (1.2, 1.5), "force_text": (0.3, 0.6), "max_move": None},
                       {"expand": (1.3, 1.8), "force_text": (0.6, 1.2), "force_static": (0.3, 0.6), "max_move": None},
                       {"expand": (1.5, 2.2), "force_text": (0.8, 1.6), "force_static": (1.0, 2.0),
                        "force_pull": (0.002, 0.002), "max_move": None})


def _leader(ax, text, x: float, y: float, min_px: float) -> None:
    """A thin grey line from the point (x, y) to the nearest edge of its label, when the label moved away."""
    import numpy as np

    r = ax.figure.canvas.get_renderer()
    box = text.get_window_extent(r)
    px, py = ax.transData.transform((x, y))
    nx, ny = np.clip(px, box.x0, box.x1), np.clip(py, box.y0, box.y1)
    if np.hypot(nx - px, ny - py) < min_px:
        return
    inv = ax.transData.inverted()
    ax.annotate("", xy=(x, y), xytext=tuple(inv.transform((nx, ny))), annotation_clip=False,
                arrowprops=dict(arrowstyle="-", color="grey", lw=0.5, shrinkA=0, shrinkB=2))


def place_labels(ax, xs: Sequence[float], ys: Sequence[float], labels: Sequence[str], fontsize: float = 7,
                 colors: Sequence[str] | None = None, marker_area: float = 180) -> list:
    """Annotate points so that no two labels overlap and none covers a marker: adjustText moves them apart,
    repelled by the points and by an invisible marker of ``marker_area`` points^2 at each (room for ringed or
    large markers), with stronger settings while any label is still illegible (`label_collisions`), keeping the
    placement with the fewest problems; a thin leader joins a label that had to move to its point. Call it after
    the axes' scales and limits are final."""
    from adjustText import adjust_text

    merged: dict[tuple, list] = {}         # methods with identical values share one point and one label
    for i, key in enumerate(zip(xs, ys)):
        merged.setdefault(key, []).append(i)
    xs, ys = [k[0] for k in merged], [k[1] for k in merged]
    labels = [" = ".join(labels[i] for i in idx) for idx in merged.values()]
    colors = [colors[idx[0]] for idx in merged.values()] if colors else None
    texts = [ax.text(x, y, lab, fontsize=fontsize, color=(colors[i] if colors else "black"))
             for i, (x, y, lab) in enumerate(zip(xs, ys, labels))]
    if not texts:
        return texts
    keep_clear = ax.scatter(xs, ys, s=marker_area, alpha=0)
    best = None                           # (number of problems, label positions)
    for settings in _PLACEMENT_ATTEMPTS:
        # a fixed iteration budget, not adjustText's default 1-second time limit: placement must not depend on load
        adjust_text(texts, x=list(xs), y=list(ys), objects=keep_clear, ax=ax, iter_lim=_PLACEMENT_ITERATIONS,
                    **settings)
        problems = len(label_collisions(ax))  # overlaps, labels outside the axes, labels on a point
        if best is None or problems < best[0]:
            best = (problems, [t.get_position() for t in texts])
        if not problems:
            break
    for t, pos in zip(texts, best[1]):
        t.set_position(pos)
    if best[0]:
        _nudge(ax, texts, xs, ys)
    for t, x, y in zip(texts, xs, ys):
        _leader(ax, t, x, y, min_px=fontsize)
    return texts


def _nudge(ax, texts, xs, ys) -> None:
    """Last resort after adjustText: move each label that still overlaps a label or covers a point to the nearest
    free spot on rings around its own point (8 directions, growing radius), inside the axes."""
    import numpy as np

    ax.figure.canvas.draw()
    r = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(r)
    points = ax.transData.transform(np.concatenate([c.get_offsets() for c in ax.collections
                                                    if len(c.get_offsets())]))
    inv = ax.transData.inverted()

    def clear(i, box):
        inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        on_point = any(box.x0 < px < box.x1 and box.y0 < py < box.y1 for px, py in points)
        return inside and not on_point and not any(
            box.overlaps(t.get_window_extent(r)) for j, t in enumerate(texts) if j != i)

    for i, (t, x, y) in enumerate(zip(texts, xs, ys)):
        if clear(i, t.get_window_extent(r)):
            continue
        px, py = ax.transData.transform((x, y))
        w, placed = t.get_window_extent(r).width, t.get_position()
        for radius in (8, 14, 20, 28, 38, 50, 65, 80):
            for ang in np.radians([0, 45, 315, 90, 270, 135, 225, 180]):
                # anchor the label's left edge (right of the point) or its right edge (left of it)
                ox = radius * np.cos(ang) - (w if np.cos(ang) < -1e-9 else 0)
                t.set_position(tuple(inv.transform((px + ox, py + radius * np.sin(ang)))))
                if clear(i, t.get_window_extent(r)):
                    break
            else:
                continue
            break
        else:
            t.set_position(placed)                  # nothing free: keep adjustText's placement


def label_collisions(ax, margin_px: float = 1.0) -> list[str]:
    """What a reader would trip over among the axes' text labels (after drawing): pairs that overlap, labels
    outside the axes, and labels lying on a plotted point. Empty when the labels are legible."""
    import itertools

    import numpy as np

    fig = ax.figure
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    texts = [t for t in ax.texts if t.get_visible() and t.get_text()]
    boxes = [t.get_window_extent(r) for t in texts]
    frame = ax.get_window_extent(r)
    out = [f"labels overlap: {a.get_text()!r} / {b.get_text()!r}"
           for (a, ba), (b, bb) in itertools.combinations(zip(texts, boxes), 2) if ba.overlaps(bb)]
    out += [f"label outside the axes: {t.get_text()!r}" for t, b in zip(texts, boxes)
            if b.x0 < frame.x0 - margin_px or b.x1 > frame.x1 + margin_px or b.y0 < frame.y0 - margin_px
            or b.y1 > frame.y1 + margin_px]
    offsets = [c.get_offsets() for c in ax.collections if len(c.get_offsets())]
    points = ax.transData.transform(np.concatenate(offsets)) if offsets else np.zeros((0, 2))
    out += [f"label on a point: {t.get_text()!r}" for t, b in zip(texts, boxes)
            if any(b.x0 < x < b.x1 and b.y0 < y < b.y1 for x, y in points)]
    return out


def spread(positions: Sequence[float], gap: float, lo: float = 0.0, hi: float = 1.0) -> list[float]:
    """Move 1-D label positions apart so neighbours are at least ``gap`` apart, staying inside [lo, hi] where
    there is room and moving each label as little as this two-pass sweep allows; returns them in input order."""
    order = sorted(range(len(positions)), key=lambda i: positions[i])
    out = [float(positions[i]) for i in order]
    for i in range(len(out)):                       # push up from the lowest
        out[i] = max(out[i], lo if i == 0 else out[i - 1] + gap)
    for i in reversed(range(len(out))):             # pull back under the top
        out[i] = min(out[i], hi if i == len(out) - 1 else out[i + 1] - gap)
    result = [0.0] * len(out)
    for rank, i in enumerate(order):
        result[i] = out[rank]
    return result


def label_lines_right(ax, ys: Sequence[float], labels: Sequence[str], fontsize: float = 6,
                      color: str = "dimgrey") -> None:
    """Label horizontal lines at data heights ``ys`` in the right margin, spread so no two labels collide, each
    with a short leader to its line. Call after the axes' scales and limits are final."""
    fig = ax.figure
    to_axes = ax.transAxes.inverted()
    fracs = [to_axes.transform(ax.transData.transform((ax.get_xlim()[0], y)))[1] for y in ys]
    height_pt = ax.get_position().height * fig.get_figheight() * 72
    placed = spread(fracs, gap=1.25 * fontsize / height_pt)
    for y, f, lab in zip(fracs, placed, labels):
        ax.annotate(lab, xy=(1.0, y), xycoords="axes fraction", xytext=(1.03, f), textcoords="axes fraction",
                    fontsize=fontsize, color=color, va="center", ha="left",
                    arrowprops=dict(arrowstyle="-", color=color, lw=0.5, shrinkA=0, shrinkB=0))


def distinct_styles(n: int) -> list[dict]:
    """``n`` plot styles (colour, marker, line style) that differ pairwise in colour and in marker or dashes,
    so lines that lie close together can still be told apart (also in greyscale print)."""
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
              "tab:gray", "tab:olive", "tab:cyan"]
    markers = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
    dashes = ["-", "--", "-.", ":"]
    return [{"color": colors[i % len(colors)], "marker": markers[i % len(markers)],
             "linestyle": dashes[(i // 2) % len(dashes)]} for i in range(n)]


def save_figure(fig, stem: Path, dpi: int = 150) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf`` with a tight bounding box (labels and footers outside the axes are
    kept) and a PDF without a creation date (identical inputs give identical files); closes the figure."""
    paths = []
    for ext in ("png", "pdf"):
        p = Path(stem).with_suffix("." + ext)
        fig.savefig(p, dpi=dpi, bbox_inches="tight", pad_inches=0.1,
                    metadata={"CreationDate": None} if ext == "pdf" else None)
        paths.append(p)
    pyplot().close(fig)
    return paths
