"""Reading JAAD's XML files safely, with errors that name file and line.

The one reader every JAAD parser uses (``pedsense.data.jaad`` for the annotations and
attributes, ``pedsense.data.scene`` for the vehicle and traffic files): DTDs are refused before
parsing (entity bombs), parse errors name file, line and column, and frame lists are written
short ("frames 1, 2, ... (40 in all)").
"""

from __future__ import annotations

import pyexpat
import xml.etree.ElementTree as ET
from pathlib import Path

from pedsense.errors import AnnotationError

_FIX_FILE = ("Fix: re-download the file from JAAD (github.com/ykotseruba/JAAD) or regenerate the "
             "demo set with `pedsense demo-data`, or delete the file to skip that video.")


def _frames_text(frames: list[int]) -> str:
    if len(frames) == 1:
        return f"frame {frames[0]}"
    shown = ", ".join(map(str, frames[:10]))
    return f"frames {shown}" + (f" ... ({len(frames)} in all)" if len(frames) > 10 else "")


def _parse_small_xml(path: Path) -> ET.Element:
    """A whole (small) XML file, with file-and-line errors."""
    _refuse_dtd(path)
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise _parse_error(path, exc) from None
    except OSError as exc:
        raise AnnotationError(f"Cannot read {path}: {exc}. {_FIX_FILE}") from None


class _PrologRead(Exception):
    """The root element started: the prolog, where a DTD would be, is read."""


def _refuse_dtd(path: Path) -> None:
    """Raise AnnotationError when ``path`` declares a DTD (``<!DOCTYPE``).

    JAAD files never do; a DTD is how an XML file defines entities, and nested entities (an
    "entity bomb") expand a few hundred bytes into gigabytes. Only the prolog is read: expat
    stops at the root element. Read errors are left to the real parse, which names them.
    """
    parser = pyexpat.ParserCreate()

    def doctype(name, *_):
        line, column = parser.CurrentLineNumber, parser.CurrentColumnNumber
        raise AnnotationError(
            f"{path} declares a DTD (<!DOCTYPE {name}> at line {line}, column {column}): DTDs "
            "and entity expansion are refused for safety, since nested entities (an 'entity "
            "bomb') can expand a small file into gigabytes. JAAD's annotation files have no "
            f"DTD, so this one was altered or is not from JAAD. {_FIX_FILE}")

    def root(*_):
        raise _PrologRead

    parser.StartDoctypeDeclHandler = doctype
    parser.StartElementHandler = root
    _feed_until_stopped(parser, path)


def _feed_until_stopped(parser, path: Path) -> None:
    """Feed ``path`` to an expat ``parser`` until a handler raises :class:`_PrologRead` (or the
    file ends); read errors are left to the real parse, which names them."""
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 16):
                parser.Parse(chunk, False)
    except (_PrologRead, pyexpat.ExpatError, OSError):
        return


def _parse_error(path: Path, exc: ET.ParseError) -> AnnotationError:
    line, column = getattr(exc, "position", (0, 0))
    if "amplification" in str(exc):  # expat's own entity-bomb guard, should a DTD slip past
        return AnnotationError(f"{path}: entity expansion refused for safety at line {line}, "
                               f"column {column} ({exc}): the file's DTD defines nested entities "
                               f"(an 'entity bomb'). JAAD's files have no DTD. {_FIX_FILE}")
    return AnnotationError(f"{path} is not well-formed XML (truncated or corrupted): line {line}, "
                           f"column {column} ({exc}). {_FIX_FILE}")
