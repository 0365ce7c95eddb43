"""py_regex_guard — a guard plugin written in Python with guest-sdk/python.

Runs the step when a Python regular expression matches the step's input.

config: {"pattern": "<python regex>",     required
         "flags": "i",                    optional, letters from "imsxa"
         "negate": false,                 optional, invert the answer
         "field": "a.b"}                  optional, dotted path into an object input

The text searched (with `re.search`) is the input itself when it is a JSON
string, the value at `field` when one is given (a string as is, anything else
as compact JSON), or otherwise the compact JSON of the input. A `field` that
is absent from the input counts as "no match".
"""

import json
import re
from typing import Any

from plugin_sdk import guard, log

NAME = "py_regex_guard"

_FLAGS = {
    "i": re.IGNORECASE,
    "m": re.MULTILINE,
    "s": re.DOTALL,
    "x": re.VERBOSE,
    "a": re.ASCII,
}

_MISSING = object()


class _Fail(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(f"{NAME}: {message}")


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _compile(config: dict) -> "re.Pattern[str]":
    pattern = config.get("pattern")
    if pattern is None:
        raise _Fail('config.pattern is missing (expected {"pattern": "<python regex>"})')
    if not isinstance(pattern, str) or pattern == "":
        raise _Fail("config.pattern must be a non-empty string")
    flag_text = config.get("flags", "")
    if not isinstance(flag_text, str):
        raise _Fail('config.flags must be a string of letters from "imsxa"')
    flags = 0
    for letter in flag_text:
        if letter not in _FLAGS:
            raise _Fail(f'config.flags has unknown flag {letter!r} (allowed: "imsxa")')
        flags |= _FLAGS[letter]
    try:
        return re.compile(pattern, flags)
    except re.error as e:
        raise _Fail(f"config.pattern is not a valid Python regex: {e}")


def _lookup(value: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit():
            index = int(part)
            if -len(value) <= index < len(value):
                value = value[index]
            else:
                return _MISSING
        else:
            return _MISSING
    return value


def _text(input_value: Any, field: Any) -> Any:
    if field is None:
        return input_value if isinstance(input_value, str) else _compact(input_value)
    if not isinstance(field, str) or field == "":
        raise _Fail("config.field must be a non-empty dotted path such as \"a.b\"")
    if not isinstance(input_value, dict):
        raise _Fail("config.field is set but the input is not a JSON object")
    value = _lookup(input_value, field)
    if value is _MISSING:
        return _MISSING
    return value if isinstance(value, str) else _compact(value)


@guard(NAME, "Runs the step when a Python regex matches its input (or a field of it)")
def check(ctx, input, prior):
    config = ctx.config
    regex = _compile(config)
    negate = config.get("negate", False)
    if not isinstance(negate, bool):
        raise _Fail("config.negate must be true or false")

    text = _text(input, config.get("field"))
    matched = text is not _MISSING and regex.search(text) is not None
    result = matched != negate

    log(
        "debug",
        f"{NAME}: pattern {'matched' if matched else 'did not match'}; step {'runs' if result else 'is skipped'}",
        {
            "pattern": regex.pattern,
            "field": config.get("field"),
            "field_missing": text is _MISSING,
            "matched": matched,
            "negate": negate,
            "result": result,
        },
    )
    return result
