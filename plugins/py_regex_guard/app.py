"""py_regex_guard — a guard plugin written in Python (componentize-py).

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
from typing import Any, List

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import CallContext, Entry, Kind, Level, StepResult

NAME = "py_regex_guard"

_FLAGS = {
    "i": re.IGNORECASE,
    "m": re.MULTILINE,
    "s": re.DOTALL,
    "x": re.VERBOSE,
    "a": re.ASCII,
}

_MISSING = object()


def _fail(message: str) -> Err:
    return Err(f"{NAME}: {message}")


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _parse_config(text: str) -> dict:
    if not text or not text.strip():
        config: Any = {}
    else:
        try:
            config = json.loads(text)
        except ValueError as e:
            raise _fail(f"config is not valid JSON: {e}")
    if not isinstance(config, dict):
        raise _fail("config must be a JSON object")
    return config


def _compile(config: dict) -> "re.Pattern[str]":
    pattern = config.get("pattern")
    if pattern is None:
        raise _fail('config.pattern is missing (expected {"pattern": "<python regex>"})')
    if not isinstance(pattern, str) or pattern == "":
        raise _fail("config.pattern must be a non-empty string")
    flag_text = config.get("flags", "")
    if not isinstance(flag_text, str):
        raise _fail('config.flags must be a string of letters from "imsxa"')
    flags = 0
    for letter in flag_text:
        if letter not in _FLAGS:
            raise _fail(f'config.flags has unknown flag {letter!r} (allowed: "imsxa")')
        flags |= _FLAGS[letter]
    try:
        return re.compile(pattern, flags)
    except re.error as e:
        raise _fail(f"config.pattern is not a valid Python regex: {e}")


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
        raise _fail("config.field must be a non-empty dotted path such as \"a.b\"")
    if not isinstance(input_value, dict):
        raise _fail("config.field is set but the input is not a JSON object")
    value = _lookup(input_value, field)
    if value is _MISSING:
        return _MISSING
    return value if isinstance(value, str) else _compact(value)


class Describe(exports.Describe):
    def describe(self) -> List[Entry]:
        return [
            Entry(
                name=NAME,
                kind=Kind.GUARD,
                description="Runs the step when a Python regex matches its input (or a field of it)",
            )
        ]


class Guard(exports.Guard):
    def check(self, ctx: CallContext, input: str, prior: List[StepResult]) -> bool:
        config = _parse_config(ctx.config)
        regex = _compile(config)
        negate = config.get("negate", False)
        if not isinstance(negate, bool):
            raise _fail("config.negate must be true or false")
        try:
            input_value = json.loads(input)
        except ValueError as e:
            raise _fail(f"input is not valid JSON: {e}")

        text = _text(input_value, config.get("field"))
        matched = text is not _MISSING and regex.search(text) is not None
        result = matched != negate

        host.log(
            Level.DEBUG,
            f"{NAME}: pattern {'matched' if matched else 'did not match'}; step {'runs' if result else 'is skipped'}",
            _compact(
                {
                    "pattern": regex.pattern,
                    "field": config.get("field"),
                    "field_missing": text is _MISSING,
                    "matched": matched,
                    "negate": negate,
                    "result": result,
                }
            ),
        )
        return result
