"""The one colour scale of Unmask: step number -> colour, early to late, and a readable text colour.

The scale is viridis (dark blue-purple early, yellow late): perceptually uniform, ordered by
lightness, and readable with every common colour-vision deficiency and in greyscale. Tokens are
painted as filled chips, so the same colours work on light and dark pages; the text colour on a
chip is black or white, whichever contrasts more (WCAG relative luminance); every colour of the
scale gets at least 4.5:1 (WCAG AA).

Left out: a second palette. Charts use the same stops (`PLOTLY_SCALE`) so a colour means the same
step everywhere.
"""

from __future__ import annotations

from functools import lru_cache

# Viridis sampled at 9 evenly spaced points (matplotlib's table); linear interpolation in between.
VIRIDIS = ("#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725")
PLOTLY_SCALE = [[i / (len(VIRIDIS) - 1), color] for i, color in enumerate(VIRIDIS)]
DARK_TEXT, LIGHT_TEXT = "#000000", "#ffffff"


def _rgb(color: str) -> tuple[int, int, int]:
    """'#3b528b' -> (59, 82, 139); also accepts the short '#abc' form."""
    value = color.strip().lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    if len(value) != 6:
        raise ValueError(f"expected a colour like '#3b528b', got {color!r}")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(min(max(c, 0), 255)):02x}" for c in rgb)


def scale_color(t: float) -> str:
    """Colour at fraction t of the scale (0 = early, 1 = late): scale_color(0.5) == '#21918c'."""
    t = min(max(float(t), 0.0), 1.0) * (len(VIRIDIS) - 1)
    low = min(int(t), len(VIRIDIS) - 2)
    a, b, f = _rgb(VIRIDIS[low]), _rgb(VIRIDIS[low + 1]), t - low
    return _hex(tuple(x + (y - x) * f for x, y in zip(a, b)))


@lru_cache(maxsize=65536)  # a frame asks for the same few colours hundreds of times
def step_color(step: int, total: int) -> str:
    """Colour of step `step` (1-based) out of `total`: step_color(1, 9) == '#440154', step_color(9, 9) == '#fde725'."""
    if total <= 1:
        return VIRIDIS[-1]
    return scale_color((step - 1) / (total - 1))


def luminance(color: str) -> float:
    """WCAG relative luminance, 0 (black) to 1 (white)."""
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in _rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio, 1 to 21."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@lru_cache(maxsize=4096)
def text_color_for(background: str) -> str:
    """Black or white text, whichever reads better: text_color_for('#440154') == '#ffffff'."""
    return max((DARK_TEXT, LIGHT_TEXT), key=lambda text: contrast(text, background))


def gradient_css(stops: int = len(VIRIDIS)) -> str:
    """A CSS linear-gradient of the whole scale, early (left) to late (right)."""
    colors = ", ".join(scale_color(i / (stops - 1)) for i in range(stops))
    return f"linear-gradient(to right, {colors})"
