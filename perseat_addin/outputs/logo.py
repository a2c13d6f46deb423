"""The MSP's logo (Settings.LogoFile), read once and checked before any invoice is drawn.

The file must be a real PNG or JPEG of sane size: its bytes are read here (at most
:data:`MAX_BYTES`) and its type and pixel size come from XlsxWriter's own image reader,
which also embeds it. A bad logo is one problem naming Settings' LogoFile row and the fix.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

from perseat_addin.errors import InputProblems, Problem
from perseat_addin.model import Book

MAX_BYTES = 5 * 1024 * 1024
"""The largest logo file read (5 MB): a logo is a few kilobytes; a huge file is a mistake."""

MAX_PIXELS = 10_000
"""The widest or tallest logo, in pixels, that is accepted."""

HEIGHT_PT = 48.0
"""How tall the logo prints (points, 2/3 inch); its width follows, kept in proportion."""

MAX_WIDTH_PT = 230.0
"""The widest the logo prints (points): a very wide logo is scaled down to this width."""


@dataclass(frozen=True)
class Logo:
    """A checked logo: where it is, its bytes, and the size it prints at (points)."""

    path: str
    data: bytes = b""
    width: float = 0.0
    height: float = 0.0
    scale: float = 1.0  # of its natural size (pixels at its own dpi)


def _problem(message: str, fix: str) -> InputProblems:
    return InputProblems([Problem("Settings", None, "Value", f"LogoFile: {message}", fix)])


def logo_path(book: Book) -> Path | None:
    """Settings.LogoFile as a path: a full path as typed, a bare name beside the workbook; None when blank."""
    name = book.settings.logo_file.strip()
    if not name:
        return None
    typed = Path(os.path.expanduser(os.path.expandvars(name)))
    if typed.is_absolute():
        return typed
    here = Path(book.path)
    if "://" in book.path or (not here.is_absolute() and not here.is_file()):  # an unsaved book: "Book1"
        raise _problem(f"{name!r} is a name beside the workbook, but the workbook has no folder (never saved, or "
                       "opened from a web address)", "save the workbook first, or type the logo's full path")
    return here.resolve().parent / typed


def read_logo(book: Book) -> Logo | None:
    """The workbook's logo, checked (exists, a real PNG/JPEG, at most 5 MB and 10,000 pixels a side), or None
    when LogoFile is blank; InputProblems naming Settings' LogoFile otherwise."""
    path = logo_path(book)
    if path is None:
        return None
    fix = ("save the logo as a PNG or JPEG file (at most 5 MB) and type its name in Settings' LogoFile, or clear "
           "LogoFile")
    try:
        if not path.is_file():
            raise _problem(f"there is no file {path}", "put the logo file beside the workbook (or type its full path), "
                           "or clear LogoFile to print the MSP name only")
        if path.stat().st_size > MAX_BYTES:
            raise _problem(f"{path.name} is {path.stat().st_size / 1_048_576:.1f} MB, too large for a logo", fix)
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise _problem(f"{path} cannot be read ({exc.strerror or exc})", fix) from None
    if len(data) > MAX_BYTES:
        raise _problem(f"{path.name} is larger than 5 MB, too large for a logo", fix)
    from xlsxwriter.image import Image  # the reader XlsxWriter embeds it with

    try:
        image = Image(io.BytesIO(data))
        kind, width, height = image.image_type, float(image.width), float(image.height)
        dpi_x, dpi_y = float(image.x_dpi or 96), float(image.y_dpi or 96)
    except Exception:  # XlsxWriter's reader refuses what is not an image it knows (any exception: damaged data)
        raise _problem(f"{path.name} is not a PNG or JPEG image (its contents are not an image)", fix) from None
    if kind not in ("PNG", "JPEG"):
        raise _problem(f"{path.name} is a {kind} image, not PNG or JPEG", fix)
    if not (1 <= width <= MAX_PIXELS and 1 <= height <= MAX_PIXELS):
        raise _problem(f"{path.name} is {width:.0f} × {height:.0f} pixels; a logo is at most {MAX_PIXELS:,} a side",
                       fix)
    natural_w, natural_h = width * 72 / dpi_x, height * 72 / dpi_y
    scale = min(HEIGHT_PT / natural_h, MAX_WIDTH_PT / natural_w)
    return Logo(str(path), data, natural_w * scale, natural_h * scale, scale)


__all__ = ["HEIGHT_PT", "MAX_BYTES", "Logo", "logo_path", "read_logo"]
