#!/usr/bin/env bash
# Runs the test suite under the other supported Pythons (3.12, 3.13) when
# pyenv provides them; says so and skips each one that is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
for version in 3.12 3.13; do
  prefix=""
  if command -v pyenv >/dev/null 2>&1; then
    full=$(pyenv versions --bare 2>/dev/null | grep -E "^${version//./\\.}\.[0-9]+$" | sort -V | tail -n 1 || true)
    [ -n "$full" ] && prefix=$(pyenv prefix "$full")
  fi
  python="${prefix:+$prefix/bin/python3}"
  if [ -z "$python" ] || [ ! -x "$python" ]; then
    echo "skipping Python $version: not installed (pyenv install $version to test it)"
    continue
  fi
  venv=".venv-$version"
  stamp="$venv/.installed-$(cksum < pyproject.toml | cut -d' ' -f1)"
  if [ ! -f "$stamp" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
    rm -f "$venv"/.installed-*
    touch "$stamp"
  fi
  echo "== Python $version ($("$venv/bin/python" -V))"
  "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
done
