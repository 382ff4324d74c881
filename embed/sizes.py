"""The widget's sizes, shared by the snippet builder, the frame page and oEmbed."""

from __future__ import annotations

# name: (width, height) in CSS pixels; "full" is as wide as its column, 600 when a number is needed.
# The script widget grows with its text; a frame cannot, so each height is what the longest
# fragment (280 characters) with a two-line title needs in Chromium at that width, and a little
# more: censored words are never cut (tests/embed/test_widget_browser.py measures it).
SIZES: dict[str, tuple[int, int]] = {
    "badge": (180, 420),
    "card": (300, 340),
    "banner": (468, 150),
    "full": (600, 220),
}
DEFAULT_SIZE = "card"


def fit_size(maxwidth: int | None, maxheight: int | None,
             preferred: str = DEFAULT_SIZE) -> tuple[str, int, int]:
    """The size to offer within maxwidth × maxheight: ``preferred`` (a name in SIZES) if it fits,
    else the largest that does, else the badge shrunk to fit (an oEmbed consumer's limits are
    never exceeded)."""
    def fits(name: str) -> bool:
        w, h = SIZES[name]
        return (maxwidth is None or w <= maxwidth) and (maxheight is None or h <= maxheight)

    if fits(preferred):
        return (preferred, *SIZES[preferred])
    fitting = [n for n in SIZES if fits(n)]
    if fitting:
        best = max(fitting, key=lambda n: SIZES[n][0] * SIZES[n][1])
        return (best, *SIZES[best])
    w, h = SIZES["badge"]
    return ("badge", min(w, maxwidth or w), min(h, maxheight or h))
