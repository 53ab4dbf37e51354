#!/usr/bin/env bash
# Replaces the configuration reference between the markers in README.md with `crispd config --reference`.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/debug/crispd}
table=$("$bin" config --reference --config-dir /nonexistent)
python3 - "$table" <<'PY'
import sys, re
table = sys.argv[1]
text = open("README.md").read()
begin, end = "<!-- config-reference:begin -->", "<!-- config-reference:end -->"
pre, rest = text.split(begin, 1)
_, post = rest.split(end, 1)
open("README.md", "w").write(pre + begin + "\n" + table.rstrip("\n") + "\n" + end + post)
PY
