"""Minutiae template formats: ISO/IEC 19794-2 (2005 read/write, 2011 read), ANSI INCITS
378-2004 (read/write) and NBIS ``.xyt`` (read/write, NIST and M1 conventions).

    >>> from bench.formats import read_template, write_template
    >>> t = read_template("101_1.iso")                      # format detected from the bytes
    >>> write_template(t, "101_1.ansi", "ansi378-2004")
    >>> t2 = read_template("101_1.xyt", height=300)          # .xyt: NIST convention by default

Every reader returns a :class:`~bench.template.Template` in this project's conventions
and raises :class:`FormatError` (a :class:`~bench.template.TemplateError`) naming the file
and the problem. Conversions between formats go through a Template; what each format
loses is in :mod:`bench.formats.records` (positions to pixels, angles to 360/256 degrees
in ISO, 2 degrees in ANSI 378, 1 degree in ``.xyt``).
"""

from __future__ import annotations

from pathlib import Path

from bench.formats import ansi378, iso19794_2, xyt
from bench.formats.records import (
    ANSI_2004, ISO_2005, ISO_2011, MAGIC, XYT, FingerView, FormatError, MinutiaeRecord,
)
from bench.template import Template

#: Formats this package reads, and which of them it writes.
READABLE = (ISO_2005, ISO_2011, ANSI_2004, XYT)
WRITABLE = (ISO_2005, ANSI_2004, XYT)
_ALIASES = {"iso": ISO_2005, "iso2005": ISO_2005, "iso19794-2": ISO_2005, "iso2011": ISO_2011,
            "ansi": ANSI_2004, "ansi378": ANSI_2004, "incits378": ANSI_2004, "xyt": XYT}

__all__ = [
    "ANSI_2004", "ISO_2005", "ISO_2011", "XYT", "READABLE", "WRITABLE", "FingerView", "FormatError",
    "MinutiaeRecord", "ansi378", "canonical_format", "decode_record", "detect_format", "iso19794_2",
    "read_record", "read_template", "write_template", "xyt",
]


def canonical_format(name: str) -> str:
    """The canonical name of a format or one of its aliases (``iso``, ``ansi``, ``xyt``...)."""
    key = str(name).strip().lower()
    if key in READABLE:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    raise ValueError(f"unknown template format {name!r}; known: {', '.join(READABLE)} "
                     f"(aliases: {', '.join(sorted(_ALIASES))})")


def detect_format(data: bytes) -> str:
    """The format of template bytes: a binary record by its header, else ``.xyt`` text."""
    if data[:4] == MAGIC:
        if data[4:8] == iso19794_2.VERSION_2011:
            return ISO_2011
        if data[4:8] == iso19794_2.VERSION_2005:
            return ANSI_2004 if ansi378.looks_like_ansi(data) else ISO_2005
        return ISO_2005  # the ISO reader names the unknown version
    head = data[:4096]
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isdigit() or c.isspace() or c in "-+.EBOebo#" for c in text):
        return XYT
    raise FormatError(f"not a known template format (starts with {data[:8]!r}; known: {', '.join(READABLE)})")


def decode_record(data: bytes, fmt: str | None = None, source: str = "<bytes>") -> MinutiaeRecord:
    """Parse binary record bytes (ISO 2005/2011, ANSI 378) into views."""
    data = bytes(data)
    if fmt is None:
        try:
            fmt = detect_format(data)
        except FormatError as exc:
            raise FormatError(f"{source}: {exc}") from None
    fmt = canonical_format(fmt)
    if fmt in (ISO_2005, ISO_2011):
        return iso19794_2.decode(data, source)
    if fmt == ANSI_2004:
        return ansi378.decode(data, source)
    raise FormatError(f"{source}: {fmt} is not a binary record format")


def read_record(path: str | Path, fmt: str | None = None) -> MinutiaeRecord:
    """Parse a binary record file; errors name the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return decode_record(data, fmt, str(path))


def read_template(
    path: str | Path,
    fmt: str | None = None,
    *,
    view: int = 0,
    width: int | None = None,
    height: int | None = None,
    dpi: float | None = None,
    xyt_convention: str = "nist",
) -> Template:
    """One finger view of a template file as a Template.

    ``fmt`` is detected from the bytes when not given. For ``.xyt`` files, ``width``,
    ``height`` and ``dpi`` give the image geometry the file does not hold (``height`` is
    required by the NIST convention); for binary records they are taken from the record
    and ``dpi``, when given, overrides its resolution. The template's ``native`` bytes
    are the file's bytes and ``native_format`` its format.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not data:
        raise FormatError(f"{path}: the file is empty")
    if fmt is None:
        try:
            fmt = detect_format(data)
        except FormatError as exc:
            raise FormatError(f"{path}: {exc}") from None
    fmt = canonical_format(fmt)
    if fmt == XYT:
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise FormatError(f"{path}: not an .xyt text file (non-ASCII bytes)") from None
        t = xyt.parse(text, height=height, width=width, dpi=dpi or 500.0, convention=xyt_convention,
                      source=str(path))
    else:
        t = decode_record(data, fmt, str(path)).template(view)
        if dpi is not None:
            t = Template(t.minutiae, t.width, t.height, float(dpi), extra=t.extra)
    return Template(t.minutiae, t.width, t.height, t.dpi, native=data, native_format=fmt,
                    extra={**t.extra, "source": str(path)})


def write_template(template: Template, path: str | Path, fmt: str, **options) -> None:
    """Write a template in a standard format (options: those of the format's encoder;
    for ``xyt``: ``convention``, ``with_type``)."""
    fmt = canonical_format(fmt)
    path = Path(path)
    if fmt == XYT:
        xyt.write(template, path, **options)
        return
    if fmt == ISO_2005:
        data = iso19794_2.encode(template, **options)
    elif fmt == ANSI_2004:
        data = ansi378.encode(template, **options)
    else:
        raise FormatError(f"{fmt} can be read but not written")
    path.write_bytes(data)
