"""Property-based tests of the template parsers (ISO/IEC 19794-2, ANSI INCITS 378, .xyt).

Any byte string either parses to a template that keeps its format's constraints, or
raises the format's error (FormatError) naming the file; never another exception, a
hang, or a large allocation from a small input. Inputs are random bytes, valid records
of random templates, and such records with bytes changed, cut or added.
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="property-based tests need the hypothesis package")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bench.plugins.contract import check_template  # noqa: E402
from bench.formats import FormatError, ansi378, iso19794_2, read_template, write_template  # noqa: E402
from bench.formats.records import MAGIC  # noqa: E402
from bench.template import Template, make_minutiae  # noqa: E402

#: Examples per property (FINGERBENCH_FUZZ_EXAMPLES raises it for a longer search).
EXAMPLES = int(os.environ.get("FINGERBENCH_FUZZ_EXAMPLES", "250"))
FUZZ = settings(max_examples=EXAMPLES, deadline=2000, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True, database=None)
#: A parser may use this many bytes per input byte, plus a fixed allowance (numpy, messages).
BYTES_PER_INPUT_BYTE = 64
FIXED_ALLOWANCE = 1 << 20

_FOLDER = Path(tempfile.mkdtemp(prefix="fingerbench-fuzz-"))


def _warm_up() -> None:
    """Parse each format once, so lazy imports do not count as the parser's allocations."""
    t = Template(make_minutiae([1], [2], [0.5], [1], [50]), 10, 10, 500.0)
    for fmt in ("iso", "ansi", "xyt"):
        write_template(t, _FOLDER / f"warm.{fmt}", fmt)
        read_template(_FOLDER / f"warm.{fmt}", height=10)
    for bad in (b"FMR\x00 20\x00", b"1 2", b"\xff"):
        (_FOLDER / "warm.bad").write_bytes(bad)
        try:
            read_template(_FOLDER / "warm.bad")
        except FormatError:
            pass


_warm_up()


def _read(data: bytes, name: str, **options) -> Template | FormatError:
    """Parse ``data`` as the file ``name``; return the template or the FormatError.

    Fails on any other exception, and when the parse allocates far more than the input.
    """
    path = _FOLDER / name
    path.write_bytes(data)
    try:  # a first, untraced parse: one-time lazy imports are not the parser's allocations
        read_template(path, **options)
    except FormatError:
        pass
    tracemalloc.start()
    try:
        result: Template | FormatError = read_template(path, **options)
    except FormatError as exc:
        result = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak <= FIXED_ALLOWANCE + BYTES_PER_INPUT_BYTE * len(data), f"{peak} bytes for {len(data)} bytes"
    if isinstance(result, FormatError):
        assert str(path) in str(result), f"the error does not name the file: {result}"
    return result


def _assert_valid(t: Template) -> None:
    """Binary records hold minutiae strictly inside their image; ``.xyt`` files (NIST y
    runs from 1 to the height) within the one-pixel slack the runner allows."""
    m = t.minutiae
    assert t.width > 0 and t.height > 0 and t.dpi > 0
    if t.native_format == "xyt":
        check_template(t)
    else:
        assert np.all((m["x"] >= 0) & (m["x"] < t.width) & (m["y"] >= 0) & (m["y"] < t.height))
    assert np.all((m["angle"] >= 0) & (m["angle"] < 2 * math.pi + 1e-6))
    assert np.all(m["quality"] <= 100) and set(np.unique(m["type"])) <= {0, 1, 2}


@st.composite
def templates(draw) -> Template:
    width = draw(st.integers(1, 600))
    height = draw(st.integers(1, 600))
    n = draw(st.integers(0, 12))
    xs = draw(st.lists(st.floats(0, width - 1), min_size=n, max_size=n))
    ys = draw(st.lists(st.floats(0, height - 1), min_size=n, max_size=n))
    angles = draw(st.lists(st.floats(0, 2 * math.pi, exclude_max=True), min_size=n, max_size=n))
    kinds = draw(st.lists(st.sampled_from([0, 1, 2]), min_size=n, max_size=n))
    qualities = draw(st.lists(st.integers(0, 100), min_size=n, max_size=n))
    return Template(make_minutiae(xs, ys, angles, kinds, qualities), width, height, 500.0)


@st.composite
def mutated_records(draw, encode) -> bytes:
    """A valid record with a few bytes overwritten, then maybe cut or extended."""
    data = bytearray(encode(draw(templates())))
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=8))


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_the_format_error(data):
    result = _read(data, "any.bin")
    if isinstance(result, Template):
        _assert_valid(result)


@FUZZ
@given(st.sampled_from([b" 20\x00", b"030\x00"]), st.binary(max_size=120))
def test_bytes_behind_a_record_header_parse_or_raise(version, rest):
    result = _read(MAGIC + version + rest, "header.iso")
    if isinstance(result, Template):
        _assert_valid(result)


@FUZZ
@given(st.one_of(mutated_records(iso19794_2.encode), mutated_records(ansi378.encode)))
def test_damaged_records_parse_or_raise(data):
    result = _read(data, "damaged.fmr")
    if isinstance(result, Template):
        _assert_valid(result)


@FUZZ
@given(templates(), st.sampled_from(["iso", "ansi", "xyt"]))
def test_valid_records_read_back_inside_their_image(template, fmt):
    assume(fmt != "xyt" or len(template))  # an empty .xyt file is refused as empty
    path = _FOLDER / f"valid.{fmt}"
    write_template(template, path, fmt)
    result = _read(path.read_bytes(), f"valid.{fmt}", height=template.height if fmt == "xyt" else None,
                   width=template.width if fmt == "xyt" else None)
    assert isinstance(result, Template), str(result)
    _assert_valid(result)
    assert len(result) == len(template)


_XYT_TOKEN = st.one_of(
    st.integers(-10, 700).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["3.4e38", "1e30", "-0", "E", "B", "O", "x", "#", "nan", "1e-400", "9" * 400]),
)
_XYT_TEXT = st.lists(st.lists(_XYT_TOKEN, max_size=6).map(" ".join), max_size=12).map("\n".join)


@FUZZ
@given(_XYT_TEXT, st.sampled_from(["nist", "m1"]), st.one_of(st.none(), st.integers(1, 600)))
def test_xyt_text_parses_or_raises(text, convention, width):
    result = _read(text.encode(), "fuzz.xyt", fmt="xyt", xyt_convention=convention, width=width,
                   height=400 if convention == "nist" else None)
    if isinstance(result, Template):
        _assert_valid(result)


# -- the cases of the issue, each once --------------------------------------------------------
def test_twelve_byte_record_names_the_file():
    result = _read(b"FMR\x00 20\x00\x00\x00\x00\x10", "twelve.fmr")
    assert isinstance(result, FormatError)


def test_xyt_coordinates_beyond_float32_name_the_file():
    result = _read(b"3.4e38 10 90 50\n", "huge.xyt", height=300)
    assert isinstance(result, FormatError) and "not a pixel position" in str(result)
    result = _read(b"1e30 10 90 50\n", "wide.xyt", xyt_convention="m1")
    assert isinstance(result, FormatError)


def _record(width: int = 100, height: int = 100, word1: int = (1 << 14) | 10, word2: int = 20, angle: int = 0,
            quality: int = 50, finger_quality: int = 60) -> bytes:
    body = struct.pack(">BBBB", 0, 0, finger_quality, 1) + struct.pack(">HHBB", word1, word2, angle, quality)
    body += b"\x00\x00"
    return MAGIC + b" 20\x00" + struct.pack(">IHHHHHBB", 24 + len(body), 0, width, height, 197, 197, 1, 0) + body


@pytest.mark.parametrize("record, words", [
    (_record(word1=(1 << 14) | 150), "lies outside the declared 100x100 image"),
    (_record(word2=(1 << 14) | 20), "reserved bits"),
    (_record(quality=101), "quality 101, above 100"),
    (_record(word1=(3 << 14) | 10), "reserved type code 11"),
    (_record(finger_quality=180), "finger quality 180"),
])
def test_iso_violations_are_refused(record, words):
    assert isinstance(_read(_record(), "good.iso"), Template)
    result = _read(record, "bad.iso")
    assert isinstance(result, FormatError) and words in str(result)


def test_a_dataset_of_template_files_keeps_going_past_a_malformed_one(tmp_path):
    from bench.datasets.templates import INFO, load_templates

    (tmp_path / "1_1.iso").write_bytes(_record())
    (tmp_path / "1_2.iso").write_bytes(b"FMR\x00 20\x00\x00\x00\x00\x10")
    ds = load_templates(INFO, tmp_path)
    assert [s.id for s in ds.samples] == ["1_1", "1_2"]
    [problem] = ds.problems
    assert problem.kind == "unreadable" and "1_2.iso" in problem.message
