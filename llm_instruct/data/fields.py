"""A field of a JSON record, checked: its type named in JSON's words, its text normalised."""

from pathlib import Path

from .instructions import InstructionFileError

JSON_TYPE_NAMES = {
    dict: "object",
    list: "list",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def type_name(value) -> str:
    return JSON_TYPE_NAMES[type(value)]


def string_field(path: Path, fields: dict, key: str, location: int | str) -> str:
    """fields[key], which must be a string of whole characters; stripped, with CRLF as LF."""
    value = fields[key]
    if not isinstance(value, str):
        raise InstructionFileError(path, f"{key!r} must be a string, found {type_name(value)}", location)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:  # JSON's \ud800 escapes can name half a character
        raise InstructionFileError(
            path, f"{key!r} holds an invalid character ({value[error.start]!r} at position {error.start + 1})", location
        ) from None
    return value.replace("\r\n", "\n").strip()
