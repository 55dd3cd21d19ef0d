# lib.sh - helpers for the script tests. Sourced; expects $bin (the shrinkwrap binary).
set -uo pipefail
failures=0
checks=0
work=$(mktemp -d "${TMPDIR:-/tmp}/swtest.XXXXXX")
trap 'rm -rf "$work"' EXIT

pass() { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*" >&2; }

# expect_ok DESCRIPTION CMD... : the command exits 0
expect_ok() {
  local what=$1; shift
  if "$@" >"$work/out" 2>"$work/err"; then pass; else
    fail "$what (exit $?)"; sed 's/^/  | /' "$work/err" | tail -20 >&2; fi
}
# expect_fail DESCRIPTION PATTERN CMD... : exits non-zero, stderr matches PATTERN (grep -E)
expect_fail() {
  local what=$1 pattern=$2; shift 2
  "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  if [ $rc -eq 0 ]; then fail "$what: succeeded but should fail"; return; fi
  if [ $rc -ge 128 ] && [ $rc -ne 130 ]; then fail "$what: crashed (exit $rc)"; sed 's/^/  | /' "$work/err" | tail -20 >&2; return; fi
  if grep -qE -e "$pattern" "$work/err"; then pass; else
    fail "$what: stderr does not match /$pattern/"; sed 's/^/  | /' "$work/err" | tail -20 >&2; fi
}
# expect_grep DESCRIPTION PATTERN FILE
expect_grep() {
  if grep -qE -e "$2" "$3"; then pass; else fail "$1: /$2/ not in $3"; sed 's/^/  | /' "$3" | tail -20 >&2; fi
}
# wait_for_grep PATTERN FILE TIMEOUT_S PID : waits until FILE matches (or the process ends)
wait_for_grep() {
  local pattern=$1 file=$2 timeout=$3 pid=$4 waited=0
  while ! grep -qE -e "$pattern" "$file" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || return 1
    [ "$waited" -ge $((timeout * 10)) ] && return 1
    sleep 0.1; waited=$((waited + 1))
  done
  return 0
}
finish() {
  echo "$((checks - failures)) passed, $failures failed"
  [ "$failures" -eq 0 ]
}
