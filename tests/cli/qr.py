"""Read QR codes back with a real decoder (zxing-cpp), from an SVG, a PNG or a terminal.

The SVG is rasterized by cairosvg (Cairo), the PNG (a Chromium screenshot) is opened by
Pillow, and the terminal's half-block characters are drawn as pixels; zxing-cpp then finds and
decodes every QR code in the image, the way a phone's camera app would. Nothing here reads
segno's module matrix.
"""

from __future__ import annotations

import io
import re

import zxingcpp
from PIL import Image

__all__ = ["decode_image", "decode_png", "decode_svg", "decode_terminal_qr", "svg_elements"]

_SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)


def svg_elements(html: str) -> list[str]:
    """Every inline ``<svg>…</svg>`` element of an HTML page, in order."""
    return _SVG.findall(html)


def decode_image(image: Image.Image) -> list[str]:
    """The texts of every QR code zxing-cpp finds in ``image`` (top to bottom, left to right)."""
    found = zxingcpp.read_barcodes(
        image.convert("L"), formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    )
    ordered = sorted(found, key=lambda code: (code.position.top_left.y, code.position.top_left.x))
    return [code.text for code in ordered if code.valid]


def decode_svg(svg: str, *, scale: float = 2.0) -> list[str]:
    """Rasterize one SVG element (Cairo, on white) and decode the QR codes in it."""
    import cairosvg  # type: ignore[import-untyped]

    document = (
        svg
        if "xmlns=" in svg
        else svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"', 1)
    )
    png = cairosvg.svg2png(
        bytestring=document.encode("utf-8"), scale=scale, background_color="white"
    )
    assert isinstance(png, bytes)
    return decode_png(png)


def decode_png(data: bytes) -> list[str]:
    """Decode the QR codes in a PNG image."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return decode_image(image)


_HALF_BLOCKS = {"█": (1, 1), "▀": (1, 0), "▄": (0, 1), " ": (0, 0)}


def decode_terminal_qr(text: str, *, pixels: int = 4) -> list[str]:
    """Decode QR codes drawn on a terminal with half blocks (segno's compact output).

    Each character is one module wide and two modules high; a drawn half is light (the
    foreground of a dark terminal), a blank half dark. Lines with other characters are skipped.
    """
    rows: list[list[int]] = []
    for line in text.splitlines():
        if not line or any(char not in _HALF_BLOCKS for char in line):
            continue
        top = [_HALF_BLOCKS[char][0] for char in line]
        bottom = [_HALF_BLOCKS[char][1] for char in line]
        rows += [top, bottom]
    if not rows:
        return []
    width = max(len(row) for row in rows)
    image = Image.new("L", (width * pixels, len(rows) * pixels), 0)
    for y, row in enumerate(rows):
        for x, light in enumerate(row):
            if light:
                image.paste(255, (x * pixels, y * pixels, (x + 1) * pixels, (y + 1) * pixels))
    return decode_image(image)
