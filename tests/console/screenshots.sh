#!/usr/bin/env bash
# Regenerates the console screenshots docs/CONSOLE.md shows
# (docs/console/{runs,timeline,approval,replay}.png) by running the browser
# tests with CONSOLE_DOC_SHOTS set. Needs what .ci/setup installs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
CONSOLE_DOC_SHOTS=docs/console cargo test -p host --test it -- console::the_console_in_a_real_browser --exact
ls -l docs/console/*.png
