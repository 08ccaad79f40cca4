"""Regenerate the LungLens app icon: ``resources/icons/lunglens.svg`` and PNG sizes; and the
spin boxes' arrows (``spin-up.png``, ``spin-down.png``, see ``desktop.theme.spin_arrows``).

The SVG is written from code (so the icon is reviewable as text and reproducible) and
rendered to PNG with Qt's own SVG renderer, offscreen, so no display or extra tool is
needed. Run: ``python packaging/make_icons.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
# hicolor sizes used by Linux desktops, plus 1024 for the macOS .icns and 256 for the .ico.
SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)

# A calm teal rounded square, two pale lung lobes and a lens ring over the right lobe.
SVG = """<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">
  <title>LungLens</title>
  <defs>
    <linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="#3f8f9c"/>
      <stop offset="1" stop-color="#2a6673"/>
    </linearGradient>
  </defs>
  <rect x="8" y="8" width="240" height="240" rx="52" ry="52" fill="url(#bg)"/>
  <!-- trachea and bronchi -->
  <path d="M128 44 V104 M128 104 Q128 116 112 122 M128 104 Q128 116 144 122"
        fill="none" stroke="#e8f3f4" stroke-width="10" stroke-linecap="round"/>
  <!-- left lobe (viewer's left) -->
  <path d="M110 92 C80 84 56 120 54 160 C52 196 70 210 92 206 C108 203 114 190 114 172 L114 128 Z"
        fill="#e8f3f4"/>
  <!-- right lobe -->
  <path d="M146 92 C176 84 200 120 202 160 C204 196 186 210 164 206 C148 203 142 190 142 172 L142 128 Z"
        fill="#e8f3f4"/>
  <!-- lens -->
  <circle cx="170" cy="162" r="30" fill="#2a6673" fill-opacity="0.35" stroke="#f6c667" stroke-width="10"/>
  <path d="M192 184 L214 206" stroke="#f6c667" stroke-width="12" stroke-linecap="round"/>
</svg>
"""


def render_pngs(svg_path: Path, sizes: tuple[int, ...] = SIZES) -> list[Path]:
    """Render the SVG to ``lunglens-<size>.png`` with QSvgRenderer (offscreen Qt)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(svg_path))
    if not renderer.isValid():
        raise SystemExit(f"{svg_path}: Qt could not parse the SVG")
    out = []
    for size in sizes:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        path = svg_path.with_name(f"lunglens-{size}.png")
        if not image.save(str(path), "PNG"):
            raise SystemExit(f"{path}: could not write PNG")
        out.append(path)
    del app
    return out


def write_ico_icns(png_1024: Path) -> list[Path]:
    """The Windows .ico (PyInstaller/Inno Setup) and macOS .icns, written with Pillow."""
    from PIL import Image

    big = Image.open(png_1024)
    ico = png_1024.with_name("lunglens.ico")
    big.save(ico, sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    icns = png_1024.with_name("lunglens.icns")
    big.save(icns)
    return [ico, icns]


def write_spin_arrows(colour: str = "#dde2e8") -> list[Path]:
    """Up and down triangles, 20 x 14 pixels (drawn at 10 x 7, so sharp at 200 %), in the dark
    theme's text colour (``desktop.theme.TEXT``), with Pillow."""
    from PIL import Image, ImageDraw

    rgba = (*(int(colour[i:i + 2], 16) for i in (1, 3, 5)), 255)
    out = []
    for name, points in (("spin-up", [(2, 11), (18, 11), (10, 3)]), ("spin-down", [(2, 3), (18, 3), (10, 11)])):
        image = Image.new("RGBA", (20, 14), (0, 0, 0, 0))
        ImageDraw.Draw(image).polygon(points, fill=rgba)
        path = ICONS / f"{name}.png"
        image.save(path, optimize=True)
        out.append(path)
    return out


def main() -> int:
    ICONS.mkdir(parents=True, exist_ok=True)
    svg_path = ICONS / "lunglens.svg"
    svg_path.write_text(SVG, encoding="utf-8")
    pngs = render_pngs(svg_path)
    for path in [svg_path, *pngs, *write_ico_icns(pngs[-1]), *write_spin_arrows()]:
        print(f"wrote {path.relative_to(ICONS.parent.parent)} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
