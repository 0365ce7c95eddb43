#!/usr/bin/env python3
"""Start → result time of `host run` on every example, offline: with the
full `plugins/` folder, and with a folder holding only the plugins the
spec uses. A run loads only what its spec names, so the two should be
within a few milliseconds of each other.

    python3 host/benches/start_to_result.py [HOST_BINARY] [RUNS]

HOST_BINARY defaults to target/release/host (else target/debug/host); RUNS
to 30. The compile cache is warmed first (one run each), so every measured
run loads its plugins from the cache, as a real start does.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def plugins_named(spec):
    """Every plugin a spec references, as `host` finds them (the native and
    the Go-shaped spec: any `plugin`/`tools`/guard/mapper/reducer value)."""
    names = set(spec.get("plugins", {}).keys())

    def ref(r):
        if isinstance(r, dict):
            r = r.get("plugin", "")
        if isinstance(r, str) and r:
            names.add(r.split("#", 1)[0].strip())

    def walk(v, key=None):
        if isinstance(v, dict):
            for k, x in v.items():
                if k in ("tools", "input_guardrails", "output_guardrails", "tool_guardrails"):
                    for r in x:
                        ref(r)
                elif k in ("guard", "input_mapper", "reducer"):
                    ref(x)
                else:
                    walk(x, k)
        elif isinstance(v, list):
            for x in v:
                walk(x, key)

    walk(spec)
    return names


def time_runs(host, spec, plugins, runs, env):
    cmd = [host, "run", spec, "--plugins", plugins, "--offline", "--quiet"]
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)  # warm the cache
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), min(times)


def main():
    host = sys.argv[1] if len(sys.argv) > 1 else None
    if host is None:
        for profile in ("release", "debug"):
            candidate = os.path.join(ROOT, "target", profile, "host")
            if os.path.exists(candidate):
                host = candidate
                break
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    env = dict(os.environ)
    scratch = tempfile.mkdtemp(prefix="host-start-")
    env.setdefault("HOST_DB", os.path.join(scratch, "bench.db"))
    full = os.path.join(ROOT, "plugins")
    print(f"host: {host}, {runs} runs each, median (min) ms")
    print("| example | plugins the spec uses | full `plugins/` folder | only those plugins | difference |")
    print("|---|---|---|---|---|")
    examples = sorted(os.listdir(os.path.join(ROOT, "examples")))
    for name in examples:
        spec = os.path.join(ROOT, "examples", name, "spec.json")
        with open(spec) as f:
            used = sorted(plugins_named(json.load(f)))
        only = os.path.join(scratch, name)
        os.makedirs(only)
        for p in used:
            shutil.copy(os.path.join(full, p + ".wasm"), only)
        a, amin = time_runs(host, spec, full, runs, env)
        b, bmin = time_runs(host, spec, only, runs, env)
        print(
            f"| {name} | {', '.join(used) or '—'} | {a:.1f} ({amin:.1f}) | {b:.1f} ({bmin:.1f}) | {a - b:+.1f} |"
        )
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
