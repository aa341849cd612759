"""Plot geometry for the HTML report: axes, ticks and marks as plain dicts, in pixels.

Each function takes values straight from the results JSON and returns a `plot` dict that the
`svg` macro of `templates/plots.html.j2` draws as inline SVG; nothing is recomputed from the
implementations. Points that land on the same pixel are drawn once, so a plot's size is bounded
by its area, not by the number of samples.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

__all__ = [
    "MARKERS",
    "Axis",
    "as_number",
    "bar_chart",
    "grid_chart",
    "line_chart",
    "marker",
    "scatter_chart",
    "strip_chart",
]

WIDTH, HEIGHT = 460, 240
MARGIN = {"left": 58, "right": 14, "top": 14, "bottom": 40}
# Shapes, so that series stay apart in greyscale (colours come from CSS classes s0..s7).
MARKERS = (
    "circle",
    "square",
    "triangle",
    "diamond",
    "cross",
    "circle-open",
    "square-open",
    "triangle-open",
)
MARKER_RADIUS = 3.0
SERIES = 8  # colour classes in the stylesheet; series beyond reuse them with other shapes
CHAR_WIDTH = 6.2  # pixels per character of an 11px label: room for the longest one


def as_number(value) -> float | None:
    """A JSON number, or the strings "inf"/"-inf"/"nan" that the results writer uses; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _r(x: float) -> float:
    return round(x, 1)


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * power >= raw:
            return m * power
    return 10 * power


def _format(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        mantissa, exponent = f"{v:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{v:g}"


class Axis:
    """A linear or base-10 logarithmic map from values to pixels, with its ticks."""

    def __init__(
        self,
        low: float,
        high: float,
        start: float,
        end: float,
        log: bool = False,
        label: str = "",
        integer: bool = False,
        pad: float = 0.0,
    ) -> None:
        if log:
            low, high = math.floor(math.log10(low)), math.ceil(math.log10(high))
            if high <= low:
                high = low + 1
        elif high <= low:
            low, high = low - 1, high + 1
        else:
            low, high = low - pad * (high - low), high + pad * (high - low)
        self.low, self.high, self.start, self.end, self.log, self.label = (
            low,
            high,
            start,
            end,
            log,
            label,
        )
        if not log:
            step = _nice_step(high - low, 5)
            if integer:
                step = max(1, round(step))
            self.low = math.floor(low / step) * step
            self.high = math.ceil(high / step) * step
            self.step = step

    def __call__(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        return _r(self.start + (v - self.low) / (self.high - self.low) * (self.end - self.start))

    def contains(self, value: float) -> bool:
        return value > 0 if self.log else True

    def ticks(self) -> list[tuple[float, str]]:
        if self.log:
            span = int(self.high - self.low)
            every = max(1, math.ceil(span / 6))
            return [
                (self(10.0**e), _format(10.0**e))
                for e in range(int(self.low), int(self.high) + 1, every)
            ]
        out, v = [], self.low
        while v <= self.high + self.step / 2:
            out.append((self(v), _format(round(v, 12))))
            v += self.step
        return out


def _frame(width: int, height: int) -> dict:
    return {
        "left": MARGIN["left"],
        "top": MARGIN["top"],
        "right": width - MARGIN["right"],
        "bottom": height - MARGIN["bottom"],
    }


def _plot(title: str, width: int, height: int, x: Axis | None, y: Axis | None, **extra) -> dict:
    plot = {
        "title": title,
        "width": width,
        "height": height,
        "frame": _frame(width, height),
        "x_ticks": x.ticks() if x else [],
        "y_ticks": y.ticks() if y else [],
        "x_label": x.label if x else "",
        "y_label": y.label if y else "",
        "marks": [],
        "legend": [],
        "note": "",
    }
    plot.update(extra)
    return plot


def _log_range(values: Iterable[float], floor: float, ceiling: float) -> tuple[float, float]:
    finite = [v for v in values if 0 < v < math.inf]
    low = max(min(finite, default=floor), floor)
    high = min(max(finite + [ceiling], default=ceiling), 1e300)
    return low, high


def marker(shape_index: int, series: int, x: float, y: float, title: str = "") -> dict:
    """One point mark: its shape from `shape_index`, its colour class from `series`."""
    return {
        "kind": "marker",
        "shape": MARKERS[shape_index % len(MARKERS)],
        "cls": f"s{series % SERIES}",
        "x": x,
        "y": y,
        "r": MARKER_RADIUS,
        "title": title,
    }


def _dedupe(marks: list[dict]) -> list[dict]:
    seen, out = set(), []
    for m in marks:
        key = (m["shape"], m["cls"], round(m["x"]), round(m["y"]))
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out


def scatter_chart(
    title: str,
    series: Sequence[tuple],
    *,
    x_label: str,
    y_label: str,
    threshold: float | None = 1.0,
    width: int = WIDTH,
    height: int = HEIGHT,
    floor: float = 1e-8,
) -> dict:
    """Points (x, ratio) per series ``(name, points[, style index])``, y on a log scale with
    `threshold` drawn as a line. The style index (default: the series' position) picks colour
    and shape, so that one thing can look the same in every plot.

    A ratio that is not finite (a NaN, an infinite error, an error raised) is drawn on a band
    above the plot, labelled; a ratio of 0 (nothing measurable) on the bottom edge."""
    xs = [p[0] for _, pts, *_ in series for p in pts]
    ys = [as_number(p[1]) for _, pts, *_ in series for p in pts]
    ys_known = [v for v in ys if v is not None]
    frame = _frame(width, height)
    band = frame["top"] + 8
    x = Axis(
        min(xs, default=0.0), max(xs, default=1.0), frame["left"], frame["right"], label=x_label
    )
    low, high = _log_range(ys_known, floor, (threshold or 1.0) * 10)
    y = Axis(low, high, frame["bottom"], band + 10, log=True, label=y_label)
    plot = _plot(title, width, height, x, y)
    marks, off_scale, below = [], 0, False
    for j, (name, pts, *style) in enumerate(series):
        k = style[0] if style else j
        plot["legend"].append(
            {"label": name, "shape": MARKERS[k % len(MARKERS)], "cls": f"s{k % SERIES}"}
        )
        for px, raw in pts:
            v = as_number(raw)
            if v is None or not math.isfinite(v):
                marks.append(marker(k, k, x(px), band))
                off_scale += 1
            else:
                below |= v < 10.0**y.low
                marks.append(marker(k, k, x(px), y(min(max(v, 10.0**y.low), 10.0**y.high))))
    if threshold is not None:
        plot["marks"].append(
            {
                "kind": "hline",
                "y": y(threshold),
                "x1": frame["left"],
                "x2": frame["right"],
                "label": f"{_format(threshold)} (tolerance)"
                if threshold == 1.0
                else _format(threshold),
            }
        )
    if off_scale:
        plot["marks"].append(
            {
                "kind": "text",
                "x": frame["left"] + 4,
                "y": band - 6,
                "text": "not finite / error",
                "cls": "band",
            }
        )
    plot["marks"].extend(_dedupe(marks))
    if below:  # zeros (exact, or not compared) and tinier values sit on the bottom edge
        plot["y_ticks"][0] = (plot["y_ticks"][0][0], "\u2264" + plot["y_ticks"][0][1])
    return plot


def strip_chart(
    title: str,
    lanes: Sequence[tuple[str, str, int, Sequence[object]]],
    *,
    x_label: str,
    threshold: float = 1.0,
    width: int = 640,
    lane_height: int = 16,
    floor: float = 1e-8,
) -> dict:
    """One horizontal lane per (group, label): the values on a log x axis, `threshold` a line.

    `lanes`: (group, label, series index, values). Group names are written once, above their
    first lane; non-finite values go in a column to the right of the axis. `width` is the
    plotting area's; the labels' column comes on top of it."""
    values = [as_number(v) for *_, vs in lanes for v in vs]
    left = 24 + int(CHAR_WIDTH * max((len(label) for _, label, *_ in lanes), default=10))
    groups = list(dict.fromkeys(g for g, *_ in lanes))
    height = MARGIN["top"] + len(lanes) * lane_height + len(groups) * lane_height + MARGIN["bottom"]
    width = left + width
    right = width - 60
    low, high = _log_range([v for v in values if v is not None], floor, threshold * 10)
    x = Axis(low, high, left, right, log=True, label=x_label)
    plot = _plot(title, width, height, x, None)
    plot["frame"] = {
        "left": left,
        "top": MARGIN["top"],
        "right": right,
        "bottom": height - MARGIN["bottom"],
    }
    marks, row, current, below = [], MARGIN["top"], None, False
    for group, label, series, vs in lanes:
        if group != current:
            current = group
            row += lane_height
            marks.append({"kind": "text", "x": 4, "y": row - 3, "text": group, "cls": "group"})
        row += lane_height
        cy = row - lane_height / 2
        marks.append({"kind": "text", "x": 14, "y": cy + 4, "text": label, "cls": "lane"})
        marks.append({"kind": "lane", "x1": left, "x2": right, "y": cy})
        points, infinite = [], 0
        for raw in vs:
            v = as_number(raw)
            if v is None or not math.isfinite(v):
                infinite += 1
            else:
                below |= v < 10.0**x.low
                points.append(marker(series, series, x(min(max(v, 10.0**x.low), 10.0**x.high)), cy))
        marks.extend(_dedupe(points))
        if infinite:
            marks.append(
                {
                    "kind": "text",
                    "x": right + 6,
                    "y": cy + 4,
                    "text": f"{infinite} \u221e",
                    "cls": "lane bad",
                }
            )
    plot["marks"] = [
        {
            "kind": "vline",
            "x": x(threshold),
            "y1": MARGIN["top"],
            "y2": height - MARGIN["bottom"],
            "label": "tolerance",
        }
    ] + marks
    if below:
        plot["x_ticks"][0] = (plot["x_ticks"][0][0], "\u2264" + plot["x_ticks"][0][1])
    return plot


def line_chart(
    title: str,
    series: Sequence[tuple[str, Sequence[tuple[float, object]]]],
    *,
    x_label: str,
    y_label: str,
    log_y: bool = False,
    width: int = WIDTH,
    height: int = HEIGHT,
    vlines: Sequence[tuple[float, str]] = (),
    hlines: Sequence[tuple[float, str]] = (),
    floor: float = 1e-300,
) -> dict:
    """Lines (with point marks) per named series; `vlines`/`hlines` mark x or y values."""
    pts_all = [(px, as_number(py)) for _, pts in series for px, py in pts]
    xs = [px for px, _ in pts_all] + [v for v, _ in vlines]
    ys = [py for _, py in pts_all if py is not None and math.isfinite(py)] + [v for v, _ in hlines]
    frame = _frame(width, height)
    x = Axis(
        min(xs, default=0.0),
        max(xs, default=1.0),
        frame["left"],
        frame["right"],
        label=x_label,
        integer=all(isinstance(v, int) for v in xs),
    )
    if log_y:
        low, high = _log_range(ys, floor, max([v for v in ys if v > 0], default=1.0))
        y = Axis(low, high, frame["bottom"], frame["top"], log=True, label=y_label)
    else:
        y = Axis(
            min(ys, default=0.0),
            max(ys, default=1.0),
            frame["bottom"],
            frame["top"],
            label=y_label,
            pad=0.04,
        )
    plot = _plot(title, width, height, x, y)
    v: float | None  # a line's position here, a point's value (or None) below
    for v, label in vlines:
        plot["marks"].append(
            {"kind": "vline", "x": x(v), "y1": frame["top"], "y2": frame["bottom"], "label": label}
        )
    for v, label in hlines:
        if not log_y or v > 0:
            plot["marks"].append(
                {
                    "kind": "hline",
                    "y": y(v),
                    "x1": frame["left"],
                    "x2": frame["right"],
                    "label": label,
                }
            )
    dense = max((len(p) for _, p in series), default=0) > 40
    for k, (name, pts) in enumerate(series):
        plot["legend"].append(
            {"label": name, "shape": MARKERS[k % len(MARKERS)], "cls": f"s{k % SERIES}"}
        )
        path, pen_up = [], True
        for px, raw in pts:
            v = as_number(raw)
            if v is None or not math.isfinite(v) or (log_y and v <= 0):
                pen_up = True
                continue
            cx, cy = (
                x(px),
                y(min(max(v, 10.0**y.low if log_y else v), 10.0**y.high) if log_y else v),
            )
            path.append(f"{'M' if pen_up else 'L'}{cx},{cy}")
            pen_up = False
            if not dense:
                plot["marks"].append(marker(k, k, cx, cy))
        if path:
            plot["marks"].insert(0, {"kind": "path", "d": "".join(path), "cls": f"s{k % SERIES}"})
    return plot


def bar_chart(
    title: str,
    bars: Sequence[tuple[str, object, int]],
    *,
    x_label: str,
    reference: float | None = 1.0,
    reference_label: str = "",
    width: int = 480,
    bar_height: int = 16,
) -> dict:
    """Horizontal bars (label, value, series) on a log x axis, `reference` drawn as a line."""
    left = 16 + int(CHAR_WIDTH * max((len(label) for label, *_ in bars), default=10))
    height = MARGIN["top"] + len(bars) * (bar_height + 4) + MARGIN["bottom"]
    width = left + width
    right = width - 70
    values = [as_number(v) for _, v, _ in bars]
    finite = [v for v in values if v is not None and 0 < v < math.inf]
    low = min(finite + ([reference] if reference else []), default=0.1)
    high = max(finite + ([reference] if reference else []), default=10.0)
    x = Axis(low / 1.5, high * 1.5, left, right, log=True, label=x_label)
    plot = _plot(title, width, height, x, None)
    plot["frame"] = {
        "left": left,
        "top": MARGIN["top"],
        "right": right,
        "bottom": height - MARGIN["bottom"],
    }
    origin = x(10.0**x.low)
    for k, ((label, _, series), v) in enumerate(zip(bars, values)):
        top = MARGIN["top"] + k * (bar_height + 4) + 2
        plot["marks"].append(
            {
                "kind": "text",
                "x": left - 6,
                "y": top + bar_height - 4,
                "text": label,
                "cls": "lane end",
            }
        )
        if v is None or not 0 < v < math.inf:
            plot["marks"].append(
                {
                    "kind": "text",
                    "x": origin + 4,
                    "y": top + bar_height - 4,
                    "text": "no value",
                    "cls": "lane",
                }
            )
            continue
        end = x(v)
        plot["marks"].append(
            {
                "kind": "rect",
                "x": origin,
                "y": top,
                "w": _r(end - origin),
                "h": bar_height,
                "cls": f"s{series % SERIES}",
                "title": f"{label}: {v:.3g}",
            }
        )
        plot["marks"].append(
            {
                "kind": "text",
                "x": end + 4,
                "y": top + bar_height - 4,
                "text": f"{v:.3g}\u00d7",
                "cls": "lane",
            }
        )
    if reference is not None:
        plot["marks"].append(
            {
                "kind": "vline",
                "x": x(reference),
                "y1": MARGIN["top"],
                "y2": height - MARGIN["bottom"],
                "label": reference_label,
            }
        )
    return plot


def grid_chart(
    title: str,
    rows: Sequence[str],
    columns: Sequence[str],
    cells: dict[tuple[str, str], object],
    *,
    threshold: float = 1.0,
    cell_width: int = 62,
    cell_height: int = 24,
) -> dict:
    """A table of ratios (row, column) -> value, each cell shaded by how close it is to
    `threshold` and labelled with its value (readable without colour)."""
    left = 90
    width = left + len(columns) * cell_width + 10
    height = MARGIN["top"] + 18 + len(rows) * cell_height + 10
    plot = _plot(title, width, height, None, None)
    plot["frame"] = None
    top = MARGIN["top"] + 18
    for j, col in enumerate(columns):
        plot["marks"].append(
            {
                "kind": "text",
                "x": left + j * cell_width + cell_width / 2,
                "y": top - 6,
                "text": col,
                "cls": "middle",
            }
        )
    for i, row in enumerate(rows):
        y = top + i * cell_height
        plot["marks"].append(
            {"kind": "text", "x": left - 6, "y": y + cell_height / 2 + 4, "text": row, "cls": "end"}
        )
        for j, col in enumerate(columns):
            if (row, col) not in cells:
                continue
            v = as_number(cells[(row, col)])
            level = _level(v, threshold)
            text = (
                "\u221e"
                if v is not None and math.isinf(v)
                else ("?" if v is None or math.isnan(v) else _format(float(f"{v:.2g}")))
            )
            plot["marks"].append(
                {
                    "kind": "rect",
                    "x": left + j * cell_width + 1,
                    "y": y + 1,
                    "w": cell_width - 2,
                    "h": cell_height - 2,
                    "cls": f"heat{level}",
                    "title": f"{row}, gate {col}: worst error / tolerance {text}",
                }
            )
            plot["marks"].append(
                {
                    "kind": "text",
                    "x": left + j * cell_width + cell_width / 2,
                    "y": y + cell_height / 2 + 4,
                    "text": text,
                    "cls": "middle" + (" bad" if level == 4 else ""),
                }
            )
    return plot


def _level(v: float | None, threshold: float) -> int:
    """0 far below the threshold (under 1e-3 of it), 1 under a tenth of it, 2 within a factor
    10 of it, 4 over it (or not a number)."""
    if v is None or not math.isfinite(v) or v > threshold:
        return 4
    if v < threshold * 1e-3:
        return 0
    if v < threshold * 1e-1:
        return 1
    return 2
