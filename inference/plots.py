"""The ROC and reliability plots ``lunglens calibrate`` writes beside a profile.

A clinic deciding whether to trust its new profile should see what the numbers in the
summary come from: the ROC curve with the operating points marked where they sit, and the
reliability diagram against the diagonal a calibrated model would follow. Drawn with Pillow
only (the app's image library), from the profile's own stored curve and bins, so the plots
can be redrawn from any profile file without the films. Pillow's built-in font has ASCII
glyphs only, so text is folded to ASCII first ("0.96 (0.94-0.98)", "Hopital" for "Hôpital").
"""

from __future__ import annotations

import io
import textwrap
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .decision import threshold_text
from .profile import SUFFIX, SiteProfile

WIDTH, HEIGHT = 900, 800
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 100, 40, 136, 90
SUBTITLE_CHARS = 86  # characters per subtitle line at its font size
TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)

INK = (20, 20, 20)
GRID = (225, 225, 225)
DIAGONAL = (150, 150, 150)
CURVE = (31, 94, 180)
POINT_COLOURS = ((200, 40, 40), (230, 140, 0), (120, 60, 170), (0, 140, 110))

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
_TYPOGRAPHY = str.maketrans({"–": "-", "—": "-", "−": "-", "≥": ">=", "≤": "<=", "×": "x", "’": "'", "‘": "'",
                             "“": '"', "”": '"', "…": "..."})


@dataclass(frozen=True)
class PlotPaths:
    """Where the two plots of a profile go: ``<stem>.roc.png`` and ``<stem>.reliability.png``."""

    roc: Path
    reliability: Path


def profile_stem(profile_path: str | Path) -> str:
    """A profile file's name without ".profile.json" or ".json": "clinic" for either."""
    name = Path(profile_path).name
    for suffix in (SUFFIX, ".json"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def plot_paths(profile_path: str | Path) -> PlotPaths:
    """The plots beside ``profile_path``: "clinic.profile.json" and "clinic.json" both give "clinic.*.png"."""
    path, stem = Path(profile_path), profile_stem(profile_path)
    return PlotPaths(path.with_name(f"{stem}.roc.png"), path.with_name(f"{stem}.reliability.png"))


def write_plots(profile: SiteProfile, profile_path: str | Path,
                write: Callable[[Path, bytes], object] = Path.write_bytes) -> PlotPaths:
    """Draw both plots of ``profile`` beside ``profile_path`` as PNG files; ``write(path, data)``
    writes each (the app's profile library writes them private to the user)."""
    paths = plot_paths(profile_path)
    for path, image in ((paths.roc, roc_image(profile)), (paths.reliability, reliability_image(profile))):
        png = io.BytesIO()
        image.save(png, format="PNG")
        write(path, png.getvalue())
    return paths


def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def ascii_text(text: str) -> str:
    """``text`` in the glyphs the built-in font has: dashes and accents folded, anything else "?"."""
    folded = unicodedata.normalize("NFKD", text.translate(_TYPOGRAPHY))
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return plain.encode("ascii", "replace").decode("ascii")


@dataclass(frozen=True)
class _Axes:
    """A unit square (0..1 on both axes) drawn into the image's plot area."""

    draw: ImageDraw.ImageDraw
    left: int = MARGIN_LEFT
    top: int = MARGIN_TOP
    right: int = WIDTH - MARGIN_RIGHT
    bottom: int = HEIGHT - MARGIN_BOTTOM

    def xy(self, x: float, y: float) -> tuple[float, float]:
        return (self.left + x * (self.right - self.left), self.bottom - y * (self.bottom - self.top))

    def line(self, points: Sequence[tuple[float, float]], fill: tuple[int, int, int], width: int = 2) -> None:
        self.draw.line([self.xy(x, y) for x, y in points], fill=fill, width=width, joint="curve")

    def dashed(self, a: tuple[float, float], b: tuple[float, float], fill: tuple[int, int, int], n: int = 40) -> None:
        for i in range(0, n, 2):
            t0, t1 = i / n, (i + 1) / n
            self.line([(a[0] + (b[0] - a[0]) * t0, a[1] + (b[1] - a[1]) * t0),
                       (a[0] + (b[0] - a[0]) * t1, a[1] + (b[1] - a[1]) * t1)], fill, 2)

    def dot(self, x: float, y: float, radius: float, fill: tuple[int, int, int]) -> None:
        cx, cy = self.xy(x, y)
        self.draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill, outline=INK, width=1)


def _canvas(title: str, subtitle: list[str], x_label: str, y_label: str) -> tuple[Image.Image, _Axes]:
    """White image with title, subtitle lines (wrapped; at most three), grid, ticks and axis
    labels around the unit square."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    axes = _Axes(draw)
    tick_font, label_font = _font(17), _font(20)
    draw.text((MARGIN_LEFT, 16), ascii_text(title), fill=INK, font=_font(26))
    lines = [part for line in subtitle for part in textwrap.wrap(ascii_text(line), SUBTITLE_CHARS)][:3]
    for i, line in enumerate(lines):
        draw.text((MARGIN_LEFT, 54 + 22 * i), line, fill=INK, font=_font(17))
    for t in TICKS:
        axes.line([(t, 0.0), (t, 1.0)], GRID, 1)
        axes.line([(0.0, t), (1.0, t)], GRID, 1)
        x, y = axes.xy(t, 0.0)
        draw.text((x, y + 8), f"{t:.1f}", fill=INK, font=tick_font, anchor="mt")
        x, y = axes.xy(0.0, t)
        draw.text((x - 10, y), f"{t:.1f}", fill=INK, font=tick_font, anchor="rm")
    draw.rectangle([axes.left, axes.top, axes.right, axes.bottom], outline=INK, width=2)
    draw.text(((axes.left + axes.right) / 2, axes.bottom + 44), x_label, fill=INK, font=label_font, anchor="mt")
    # The y label, written sideways: drawn on its own strip, turned, pasted left of the ticks.
    strip = Image.new("RGB", (axes.bottom - axes.top, 30), "white")
    ImageDraw.Draw(strip).text((strip.width / 2, 15), y_label, fill=INK, font=label_font, anchor="mm")
    image.paste(strip.rotate(90, expand=True), (14, axes.top))
    return image, axes


def _legend(axes: _Axes, entries: list[tuple[str, tuple[int, int, int], str]]) -> None:
    """Entries (text, colour, "line" | "dot" | "dash") in a box at the plot's lower right."""
    font = _font(16)
    row = 24
    width = max(int(axes.draw.textlength(ascii_text(text), font=font)) for text, _, _ in entries) + 56
    x0, y1 = axes.right - width - 12, axes.bottom - 12
    y0 = y1 - row * len(entries) - 12
    axes.draw.rectangle([x0, y0, axes.right - 12, y1], fill="white", outline=DIAGONAL)
    for i, (text, colour, kind) in enumerate(entries):
        y = y0 + 6 + row * i + row / 2
        if kind == "dot":
            axes.draw.ellipse([x0 + 18, y - 7, x0 + 32, y + 7], fill=colour, outline=INK)
        elif kind == "dash":
            for dx in (8, 24):
                axes.draw.line([(x0 + dx, y), (x0 + dx + 10, y)], fill=colour, width=2)
        else:
            axes.draw.line([(x0 + 8, y), (x0 + 42, y)], fill=colour, width=3)
        axes.draw.text((x0 + 50, y), ascii_text(text), fill=INK, font=font, anchor="lm")


def roc_image(profile: SiteProfile) -> Image.Image:
    """The ROC curve of the profile's films, the chance diagonal, and each operating point
    at (1 - specificity, sensitivity) with its 95 % intervals as cross-hairs."""
    auc = profile.metrics.get("auc")
    subtitle = [f"Films: {profile.source}", f"AUC {auc.plain()}; operating points with their 95 % CI as bars" if auc else ""]
    image, axes = _canvas(f"ROC: {profile.name}", subtitle, "1 - specificity (false-positive rate)",
                          "Sensitivity (true-positive rate)")
    axes.dashed((0.0, 0.0), (1.0, 1.0), DIAGONAL)
    if profile.roc:
        axes.line([(fpr, tpr) for fpr, tpr in profile.roc], CURVE, 3)
    entries: list[tuple[str, tuple[int, int, int], str]] = [("ROC curve", CURVE, "line"), ("chance", DIAGONAL, "dash")]
    for colour, op in zip(POINT_COLOURS, profile.operating_points.values()):
        if op.sensitivity is None or op.specificity is None:
            continue
        x, y = 1.0 - op.specificity.value, op.sensitivity.value
        axes.line([(1.0 - op.specificity.hi, y), (1.0 - op.specificity.lo, y)], colour, 2)
        axes.line([(x, op.sensitivity.lo), (x, op.sensitivity.hi)], colour, 2)
        axes.dot(x, y, 8, colour)
        entries.append((f"{op.display_name} ({threshold_text(op.threshold)}): sens {op.sensitivity.percent()}, "
                        f"spec {op.specificity.percent()}", colour, "dot"))
    _legend(axes, entries)
    return image


def reliability_image(profile: SiteProfile) -> Image.Image:
    """Observed fraction of pneumonia against the calibrated probability, bin by bin (dot area
    by the number of films in the bin, which is printed beside it), and the diagonal."""
    before, after = profile.metrics.get("ece_before"), profile.metrics.get("ece_after")
    ece = f"ECE {after.plain()} after calibration, {before.plain()} before (10 bins)" if before and after else ""
    subtitle = [f"Films: {profile.source}", ece]
    image, axes = _canvas(f"Reliability: {profile.name} ({profile.calibration.method})", subtitle,
                          "Predicted probability of pneumonia (calibrated)", "Observed fraction with pneumonia")
    axes.dashed((0.0, 0.0), (1.0, 1.0), DIAGONAL)
    bins = [b for b in profile.reliability if b.get("count")]
    if bins:
        points = [(b["mean_predicted"], b["observed_fraction"]) for b in bins]
        axes.line(points, CURVE, 2)
        most = max(b["count"] for b in bins)
        font = _font(14)
        for b, (x, y) in zip(bins, points):
            axes.dot(x, y, 4 + 10 * (b["count"] / most) ** 0.5, CURVE)
            cx, cy = axes.xy(x, y)
            if x > 0.9:  # near the right edge the count goes below the dot, inside the plot
                axes.draw.text((cx, cy + 16), f"n={b['count']}", fill=INK, font=font, anchor="rt")
            else:
                axes.draw.text((cx + 14, cy - 14), f"n={b['count']}", fill=INK, font=font, anchor="lm")
    _legend(axes, [("films per bin (dot area)", CURVE, "dot"), ("perfect calibration", DIAGONAL, "dash")])
    return image
