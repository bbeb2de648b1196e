# Finds Deno for the project's scripts (sourced by ./run_tests.sh and ./lamportkv; not run).
#
#   . scripts/deno_env.sh
#   deno_env "$ROOT" || exit 1      # then "$DENO_BIN" is an absolute path to deno 2
#
# Uses deno from PATH, else .tools/deno (a project-local npm install), else installs deno@2 there
# with npm (one time). On success exports DENO_BIN, puts its directory first on PATH (child
# processes, e.g. tests that spawn deno, find the same binary) and sets DENO_NO_UPDATE_CHECK=1.
# Messages go to stderr, prefixed with $DENO_ENV_WHO (default "lamportkv").

deno_env_note() { printf '%s\n' "${DENO_ENV_WHO:-lamportkv}: $*" >&2; }

# deno_env ROOT: returns 0 with DENO_BIN set, or 1 after saying why not.
deno_env() {
  local root=$1
  local local_deno="$root/.tools/deno/node_modules/.bin/deno"
  local deno_bin=""
  if command -v deno >/dev/null 2>&1; then
    deno_bin=$(command -v deno)
  elif [ -x "$local_deno" ]; then
    deno_bin=$local_deno
  elif command -v npm >/dev/null 2>&1; then
    deno_env_note "deno not found; installing deno@2 into .tools/deno with npm (one time)..."
    if npm install --prefix "$root/.tools/deno" deno@2 --no-audit --no-fund --silent >/dev/null \
      && [ -x "$local_deno" ] && "$local_deno" --version >/dev/null 2>&1; then
      deno_bin=$local_deno
      deno_env_note "installed $("$local_deno" --version | head -n 1)"
    else
      deno_env_note "ERROR: could not install deno with npm. Install Deno 2 (https://deno.com) and retry."
      return 1
    fi
  else
    deno_env_note "ERROR: deno is not on PATH and npm is not available to install it."
    deno_env_note "Install Deno 2 (https://deno.com) and retry."
    return 1
  fi
  local deno_dir
  deno_dir=$(cd "$(dirname "$deno_bin")" && pwd) || return 1
  DENO_BIN="$deno_dir/$(basename "$deno_bin")"
  export DENO_BIN
  export PATH="$deno_dir:$PATH"
  export DENO_NO_UPDATE_CHECK=1
  return 0
}
