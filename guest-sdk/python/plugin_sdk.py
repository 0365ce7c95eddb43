"""The Python plugin SDK (componentize-py).

Register entries with the decorators ``guard``, ``input_mapper``,
``reducer``, ``tool`` and ``guardrail``; the SDK answers ``describe``,
dispatches every call by entry name, parses what the host sends and encodes
what you return. You never touch the WIT bindings or JSON text::

    from plugin_sdk import guard, text

    @guard("shouty", "runs the step when the input is upper case")
    def shouty(ctx, input, prior):
        return text(input) == text(input).upper()

- ``ctx``: ``run_id``, ``workflow_key``, ``stage``, ``step``, ``entry`` and
  ``config`` (a dict, ``{}`` when absent)
- ``input`` / ``payload`` / ``arguments``: parsed JSON values
- ``prior`` / ``outputs``: step results with ``stage_name``, ``step_index``,
  ``agent_key``, ``parallel_group``, ``branch_index``, ``skipped``,
  ``output`` (parsed) and ``error``
- raise any exception to fail the call with its message.

Build: ``guest-sdk/python/build.sh SRC_DIR OUT.wasm`` (or ``host plugins
build``); it puts this module beside your sources.
"""

import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import guardrail as _guardrail
from wit_world.exports import tool as _tool
from wit_world.imports import host as _host
from wit_world.imports import types as _types

__all__ = ["guard", "input_mapper", "reducer", "tool", "guardrail", "text", "log", "Context", "Step", "Verdict"]


@dataclass
class Context:
    run_id: str
    workflow_key: str
    stage: str
    step: int
    entry: str
    config: Dict[str, Any]


@dataclass
class Step:
    stage_name: str
    step_index: int
    agent_key: str
    parallel_group: Optional[str]
    branch_index: Optional[int]
    skipped: bool
    output: Any
    error: Optional[str]


@dataclass
class Verdict:
    tripwire: bool
    message: str = ""
    info: Any = None


_KINDS = {
    "guard": _types.Kind.GUARD,
    "input_mapper": _types.Kind.INPUT_MAPPER,
    "reducer": _types.Kind.REDUCER,
    "tool": _types.Kind.TOOL,
    "guardrail": _types.Kind.GUARDRAIL,
}
_entries: List[Dict[str, Any]] = []


def _register(kind: str, name: str, description: str, **extra: Any) -> Callable:
    def decorate(fn: Callable) -> Callable:
        _entries.append({"kind": kind, "name": name, "description": description, "fn": fn, **extra})
        return fn

    return decorate


def guard(name: str, description: str) -> Callable:
    """A guard ``fn(ctx, input, prior) -> bool``: True runs the step."""
    return _register("guard", name, description)


def input_mapper(name: str, description: str) -> Callable:
    """An input mapper ``fn(ctx, input, prior) -> value``: the step's input."""
    return _register("input_mapper", name, description)


def reducer(name: str, description: str) -> Callable:
    """A reducer ``fn(ctx, outputs, prior) -> value``: the next stage's input."""
    return _register("reducer", name, description)


def tool(name: str, description: str, parameters: Optional[dict] = None) -> Callable:
    """A tool ``fn(ctx, arguments) -> value``; parameters is its JSON Schema."""
    return _register("tool", name, description, parameters=parameters or {"type": "object"})


def guardrail(name: str, description: str) -> Callable:
    """A guardrail ``fn(ctx, phase, payload) -> Verdict``; phase is input|output|tool-input|tool-output."""
    return _register("guardrail", name, description)


def text(value: Any) -> str:
    """The text of a JSON value: a string as is, None as "", anything else as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_LEVELS = {
    "trace": _types.Level.TRACE,
    "debug": _types.Level.DEBUG,
    "info": _types.Level.INFO,
    "warn": _types.Level.WARN,
    "error": _types.Level.ERROR,
}


def log(level: str, message: str, fields: Optional[dict] = None) -> None:
    """A record in the host's log under the plugin's name."""
    _host.log(_LEVELS[level], str(message), "" if fields is None else json.dumps(fields))


def _parse(what: str, raw: str) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as e:
        raise Err(f"host sent invalid JSON for {what}: {e}")


def _context(c: Any) -> Context:
    config = _parse("config", c.config)
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise Err(f"{c.entry}: config must be a JSON object")
    return Context(c.run_id, c.workflow_key, c.stage, c.step, c.entry, config)


def _results(items: List[Any]) -> List[Step]:
    return [
        Step(r.stage_name, r.step_index, r.agent_key, r.parallel_group, r.branch_index, r.skipped,
             _parse("a step output", r.output), r.error)
        for r in items
    ]


def _find(kind: str, name: str) -> Callable:
    for e in _entries:
        if e["kind"] == kind and e["name"] == name:
            return e["fn"]
    raise Err(f"this plugin offers no {kind} named `{name}`")


def _call(f: Callable[[], Any]) -> Any:
    try:
        return f()
    except Err:
        raise
    except Exception as e:  # the plugin's own failure: its message goes to the host
        raise Err(str(e) or type(e).__name__)


def _encode(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise Err(f"the result is not JSON: {e}")


class Describe(exports.Describe):
    def describe(self) -> List[_types.Entry]:
        return [_types.Entry(name=e["name"], kind=_KINDS[e["kind"]], description=e["description"]) for e in _entries]


class Guard(exports.Guard):
    def check(self, ctx: Any, input: str, prior: List[Any]) -> bool:
        c = _context(ctx)
        return _call(lambda: bool(_find("guard", c.entry)(c, _parse("input", input), _results(prior))))


class InputMapper(exports.InputMapper):
    def map_input(self, ctx: Any, input: str, prior: List[Any]) -> str:
        c = _context(ctx)
        return _encode(_call(lambda: _find("input_mapper", c.entry)(c, _parse("input", input), _results(prior))))


class Reducer(exports.Reducer):
    def reduce(self, ctx: Any, outputs: List[Any], prior: List[Any]) -> str:
        c = _context(ctx)
        return _encode(_call(lambda: _find("reducer", c.entry)(c, _results(outputs), _results(prior))))


class Tool(exports.Tool):
    def definitions(self) -> List[_tool.ToolDefinition]:
        return [
            _tool.ToolDefinition(name=e["name"], description=e["description"], parameters=json.dumps(e["parameters"]))
            for e in _entries
            if e["kind"] == "tool"
        ]

    def invoke(self, ctx: Any, name: str, arguments: str) -> str:
        c = _context(ctx)
        args = _parse("arguments", arguments) or {}
        return _encode(_call(lambda: _find("tool", name)(c, args)))


_PHASES = {
    _guardrail.Phase.INPUT: "input",
    _guardrail.Phase.OUTPUT: "output",
    _guardrail.Phase.TOOL_INPUT: "tool-input",
    _guardrail.Phase.TOOL_OUTPUT: "tool-output",
}


class Guardrail(exports.Guardrail):
    def check(self, ctx: Any, phase: Any, payload: str) -> _guardrail.Verdict:
        c = _context(ctx)
        v = _call(lambda: _find("guardrail", c.entry)(c, _PHASES[phase], _parse("payload", payload)))
        return _guardrail.Verdict(tripwire=bool(v.tripwire), message=str(v.message), info=_encode(v.info))
