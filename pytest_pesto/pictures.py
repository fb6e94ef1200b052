"""What a person looks at when a test folder fails: pictures and a readable diff.

Each differing key's type draws its pictures (`PayloadType.draw_difference`: images by
their pixels, polygons by their outlines, a plugin's type as it likes); the harness saves them
beside the actual answer (`actual/NAME.diff.png`, and `actual/NAME.sheet.png`: expected |
actual | difference), and, when pytest-html runs, hands them to the report as extras with a
unified diff of the JSON values. Pillow is imported only when a sheet is drawn; pytest-html
only when its report is written.
"""

import base64
import difflib
import html
import io
import json
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pesto_pack.types.base import JSON, PayloadType, Pictures, Tolerance
from pytest_pesto.report import display

SHEET_MARGIN = 12
SHEET_CAPTION = 22
SHEET_BACKGROUND = (245, 245, 245)
SHEET_TEXT = (30, 30, 30)
PANELS = ("expected", "actual", "difference")


@dataclass(frozen=True)
class SavedPictures:
    """One value's pictures and where they were saved."""

    key: str
    label: str
    """What they show, as the failure report names it: `image`, `images item 1`."""
    pictures: Pictures
    difference: Path
    sheet: Path


def save_pictures(
    folder: Path, key: str, payload_type: PayloadType, expected: JSON, actual: JSON, tolerance: Tolerance
) -> list[SavedPictures]:
    """Draw how `key`'s values differ and write `folder/KEY[.PART].diff.png` and `.sheet.png`."""
    saved = []
    for pictures in payload_type.draw_difference(expected, actual, tolerance):
        stem = ".".join(filter(None, (key, pictures.part)))
        label = f"{key} item {pictures.part}" if pictures.part else key
        folder.mkdir(parents=True, exist_ok=True)
        difference, sheet = folder / f"{stem}.diff.png", folder / f"{stem}.sheet.png"
        difference.write_bytes(pictures.difference)
        sheet.write_bytes(contact_sheet(pictures, label))
        saved.append(SavedPictures(key, label, pictures, difference, sheet))
    return saved


def contact_sheet(pictures: Pictures, title: str) -> bytes:
    """One PNG: the title, then expected | actual | difference side by side, each captioned,
    the legend below."""
    from PIL import Image, ImageDraw

    from pesto_pack.types.pictures import PNG_COMPRESSION

    panels = [Image.open(io.BytesIO(getattr(pictures, name))).convert("RGB") for name in PANELS]
    font = _font()
    width = sum(panel.width for panel in panels) + SHEET_MARGIN * (len(panels) + 1)
    wrap = max(20, width // 7)  # about 7 pixels a character
    lines_above = textwrap.wrap(title, wrap)
    legend = textwrap.wrap(pictures.legend, wrap)
    panel_height = max(panel.height for panel in panels)
    panels_top = SHEET_MARGIN + SHEET_CAPTION * (len(lines_above) + 1)
    legend_top = panels_top + panel_height + SHEET_MARGIN
    sheet = Image.new(
        "RGB", (width, legend_top + SHEET_CAPTION * len(legend) + SHEET_MARGIN), SHEET_BACKGROUND
    )
    draw = ImageDraw.Draw(sheet)
    for row, line in enumerate(lines_above):
        draw.text((SHEET_MARGIN, SHEET_MARGIN + row * SHEET_CAPTION), line, fill=SHEET_TEXT, font=font)
    left = SHEET_MARGIN
    for name, panel in zip(PANELS, panels, strict=True):
        draw.text((left, panels_top - SHEET_CAPTION), name, fill=SHEET_TEXT, font=font)
        sheet.paste(panel, (left, panels_top))
        left += panel.width + SHEET_MARGIN
    for row, line in enumerate(legend):
        draw.text((SHEET_MARGIN, legend_top + row * SHEET_CAPTION), line, fill=SHEET_TEXT, font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG", compress_level=PNG_COMPRESSION)
    return buffer.getvalue()


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=14)
    except (TypeError, OSError):  # Pillow without FreeType: its small bitmap font
        return ImageFont.load_default()


def readable_diff(expected: JSON, actual: JSON, expected_name: str, actual_name: str) -> str:
    """A unified diff of two JSON values, pretty-printed with sorted keys; empty when equal."""
    lines = [_pretty(value).splitlines(keepends=True) for value in (expected, actual)]
    return "".join(difflib.unified_diff(*lines, expected_name, actual_name, n=3))


def comparable_answer(answer: dict[str, JSON], types: dict[str, PayloadType]) -> dict[str, JSON]:
    """An answer with each value that does not read as text (an image's base64) replaced by
    a short stand-in: the diff shows JSON, the pictures show the rest."""
    return {
        key: value if _textual(types[key]) else f"<{types[key].name}: see its pictures or file>"
        for key, value in answer.items()
    }


def _textual(payload_type: PayloadType) -> bool:
    own = payload_type.media_type.startswith(("application/json", "text/"))
    return own and (payload_type.items is None or _textual(payload_type.items))


def _pretty(value: JSON) -> str:
    """Indented JSON, each array of numbers on one line (a coordinate pair, a bounding box)."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return (
        _NUMBER_ARRAY.sub(lambda m: "[" + ", ".join(m.group(1).replace(",", " ").split()) + "]", text) + "\n"
    )


_NUMBER_ARRAY = re.compile(r"\[\s*((?:-?[\d.eE+-]+,\s*)*-?[\d.eE+-]+)\s*\]")


def html_extras(saved: Sequence[SavedPictures], diff: str, root: Path) -> list[dict]:
    """pytest-html extras: each value's three pictures (in its media viewer), what their
    colours mean, and the JSON diff, every text escaped; paths shown relative to `root`."""
    from pytest_html import extras

    report = []
    for each in saved:
        for name in PANELS:
            content = base64.b64encode(getattr(each.pictures, name)).decode("ascii")
            report.append(extras.png(content, name=f"{each.label}: {name}"))
    notes = [
        f"<p><b>{html.escape(each.label)}</b>: {html.escape(each.pictures.legend)} "
        f"(saved as {html.escape(str(display(each.sheet, root)))})</p>"
        for each in saved
    ]
    if diff:
        notes.append(f'<pre class="pesto-diff">{html.escape(diff)}</pre>')
    if notes:
        report.append(extras.html(f'<div class="pesto-differences">{"".join(notes)}</div>'))
    return report
