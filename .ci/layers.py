#!/usr/bin/env python3
"""Checks that the library's top-level modules form one downward graph.

Every `crate::<module>` path in host/src (code and tests alike) is an edge
from the module the file belongs to. Each module has a layer below; an edge
may only point to a module of a lower layer (or the same module), so no
module reaches up and there is no import cycle. docs/ARCHITECTURE.md draws
the same layers; change both together. It also keeps every source file
under MAX_LINES, so no file grows back into several concerns.
"""
import pathlib
import re
import sys

LAYERS = [
    # Shared leaves: no crate imports at all.
    ["util", "usage", "secret", "retry", "egress"],
    # Leaves of the domain: each imports only the shared leaves, or a
    # leaf listed before it on this line's left (spec uses llm's provider
    # defaults, plugin uses spec's plugin kinds).
    ["llm", "store", "events"],
    ["spec"],
    # Where tools run: WASM plugins, MCP servers.
    ["plugin", "mcp"],
    # What the run records, then what it executes.
    ["journal"],
    ["plan"],
    ["agent"],
    ["engine"],
    # Around the engine: approvals over the journal; where events go.
    ["approvals", "sinks", "outbox", "telemetry"],
    # The service: an HTTP API over all of the above.
    ["server"],
]
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}
MAX_LINES = 700

root = pathlib.Path(__file__).resolve().parent.parent / "host" / "src"
edges = {}
bad = []
for path in sorted(root.rglob("*.rs")):
    rel = path.relative_to(root)
    lines = len(path.read_text().splitlines())
    if lines > MAX_LINES:
        bad.append(f"{rel}: {lines} lines, over {MAX_LINES}: split it along its concerns")
    top = rel.parts[0].removesuffix(".rs")
    if top in ("lib", "main", "cli"):
        continue  # the crate root and the binary sit above everything
    if top not in RANK:
        bad.append(f"{rel}: module `{top}` has no layer in .ci/layers.py")
        continue
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("//"):
            continue
        for target in re.findall(r"\bcrate::([a-z_]+)", line):
            if target == top or target not in RANK:
                continue
            edges.setdefault((top, target), f"{rel}:{n}")
            if RANK[target] >= RANK[top] and not (
                RANK[target] == RANK[top] and LAYERS[RANK[top]].index(target) < LAYERS[RANK[top]].index(top)
            ):
                bad.append(f"{rel}:{n}: `{top}` imports `{target}`, which is not below it")
if bad:
    print("module layering or file size violated (see .ci/layers.py):", file=sys.stderr)
    for b in bad:
        print("  " + b, file=sys.stderr)
    sys.exit(1)
print(f"layers: {len(edges)} module edges, all downward")
