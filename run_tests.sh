#!/usr/bin/env bash
# Runs every check of the project: deno fmt --check, deno lint, deno check, then deno test.
#
#   ./run_tests.sh                 everything
#   ./run_tests.sh --filter sim    everything, with extra arguments passed to `deno test`
#
# Finds deno on PATH, else in .tools/deno, else installs it there with npm. Prints all output
# live, lists the tests that printed a "SKIPPED: <test>: <reason>" line, and ends with one line
# "N passed, N failed" (tests, plus one per fmt/lint/check step); exits 0 only when nothing failed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")" || exit 1
ROOT=$(pwd)

passed=0
failed=0

note() { printf '%s\n' "run_tests: $*" >&2; }

finish() {
  printf '%s passed, %s failed\n' "$passed" "$failed"
  if [ "$failed" -eq 0 ]; then exit 0; else exit 1; fi
}

# --- deno ---------------------------------------------------------------------------------------
# shellcheck source=scripts/deno_env.sh
. "$ROOT/scripts/deno_env.sh"
DENO_ENV_WHO=run_tests
if ! deno_env "$ROOT"; then
  failed=1
  finish
fi
note "using $DENO_BIN ($("$DENO_BIN" --version 2>/dev/null | head -n 1))"

# --- redis-cli (optional) ---------------------------------------------------------------------
if ! command -v redis-cli >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    note "redis-cli not found; trying apt-get install redis-tools..."
    to=()
    if command -v timeout >/dev/null 2>&1; then to=(timeout 180); fi
    DEBIAN_FRONTEND=noninteractive ${to[@]+"${to[@]}"} apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive ${to[@]+"${to[@]}"} apt-get install -y -qq redis-tools \
      >/dev/null 2>&1 || true
  fi
  if command -v redis-cli >/dev/null 2>&1; then
    note "installed redis-cli"
  else
    note "NOTE: redis-cli is not available; tests that need redis-cli will be skipped."
  fi
fi

# --- checks -----------------------------------------------------------------------------------
tmp=$(mktemp "${TMPDIR:-/tmp}/lamportkv-tests.XXXXXX") || exit 1
trap 'rm -f "$tmp"' EXIT

strip_ansi() { sed -E 's/\x1b\[[0-9;]*[A-Za-z]//g' "$1"; }

have_ts_files() {
  [ -n "$(find src tests -name '*.ts' -print -quit 2>/dev/null)" ]
}

# step NAME CMD...: runs one check, counted as one passed or failed.
step() {
  local name=$1
  shift
  printf '\n==> %s\n' "$name"
  "$@" 2>&1 | tee "$tmp"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    printf '==> %s: ok\n' "$name"
  else
    failed=$((failed + 1))
    printf '==> %s: FAILED (exit %s)\n' "$name" "$rc"
  fi
}

step "deno fmt --check" "$DENO_BIN" fmt --check
# A merge left half-done: conflict markers anywhere in tracked text files.
no_conflict_markers() {
  if git grep -nE '^(<{7}|>{7}) |<{7} HEAD|>{7} [A-Za-z]' -- ':!*.lock'; then
    echo "merge conflict markers found (above)"
    return 1
  fi
  echo "no merge conflict markers"
}
if git rev-parse --git-dir >/dev/null 2>&1; then
  step "no merge conflict markers" no_conflict_markers
fi
if have_ts_files; then
  step "deno lint" "$DENO_BIN" lint
  step "deno check src/ tests/" "$DENO_BIN" check src/ tests/
else
  printf '\n==> deno lint, deno check: no TypeScript files yet, nothing to do\n'
  passed=$((passed + 2))
fi

# --- tests ------------------------------------------------------------------------------------
printf '\n==> deno test --allow-all tests/%s\n' "${*:+ $*}"
"$DENO_BIN" test --allow-all tests/ "$@" 2>&1 | tee "$tmp"
rc=${PIPESTATUS[0]}
summary=$(strip_ansi "$tmp" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n 1)
if [ -n "$summary" ]; then
  t_passed=$(sed -E 's/^[A-Za-z]+ \| ([0-9]+) passed.*/\1/' <<<"$summary")
  t_failed=$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")
  passed=$((passed + t_passed))
  failed=$((failed + t_failed))
  if [ "$rc" -ne 0 ] && [ "$t_failed" -eq 0 ]; then
    printf '==> deno test exited with %s although no test failed; counting 1 failure\n' "$rc"
    failed=$((failed + 1))
  fi
elif [ "$rc" -eq 0 ] || strip_ansi "$tmp" | grep -q 'No test modules found'; then
  printf '==> deno test: no tests ran\n'
else
  printf '==> deno test crashed (exit %s) without a summary; counting 1 failure\n' "$rc"
  failed=$((failed + 1))
fi

# Tests that announced a skip (tests/support/redis_server.ts announceSkip, or any other
# "SKIPPED: ..." line at the start of a line) are listed, so a skip is never silent.
skipped=$(strip_ansi "$tmp" | grep -E '^SKIPPED: ' | sort -u)
if [ -n "$skipped" ]; then
  printf '\n==> %s test(s) skipped:\n%s\n' "$(wc -l <<<"$skipped" | tr -d ' ')" "$skipped"
fi

printf '\n'
finish
