# Shared by the shell tests: a scratch directory removed on exit, ok/bad counters (bad
# shows the tail of $tmp/out, the last command's output) and the closing tally.
PY=${SNLVK_PYTHON:-/usr/bin/python3}
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -f "$tmp/out" ] && sed 's/^/     /' "$tmp/out" | tail -30; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }
