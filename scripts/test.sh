#!/usr/bin/env bash
# Runs every test of session-ha and ends with one line "N passed, M failed" counting
# everything it ran; exits non-zero on any failure. Installs what is missing first.
#
#   rustfmt check, clippy -D warnings (workspace and the NIF crate)    1 check each
#   cargo test --workspace                                             every Rust test
#   cargo bench -- --test (benchmarks still build and run once)        1 check
#   native_src/run_tests.sh (C ABI tests, plain and under valgrind)    every C test
#   rebar3 eunit, rebar3 ct (multi-node suites with OTP's peer)        every Erlang test
#   rebar3 dialyzer, rebar3 xref                                       1 check each
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
logdir=$(mktemp -d)
start=$(date +%s)

note() { printf '%-34s %s\n' "$1" "$2"; }

# check NAME CMD...: one pass or one fail
check() {
  local name=$1; shift
  local log="$logdir/$name.log"
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1)); note "$name" "ok"
  else
    failed=$((failed + 1)); note "$name" "FAILED (log below)"; tail -n 60 "$log"
  fi
}

# counted NAME PARSER CMD...: the parser turns the log into "P F"
counted() {
  local name=$1 parser=$2; shift 2
  local log="$logdir/$name.log" status p f
  "$@" >"$log" 2>&1
  status=$?
  read -r p f < <($parser "$log")
  p=${p:-0}; f=${f:-0}
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" -eq 0 ]; then
    note "$name" "$p passed"
  else
    note "$name" "$p passed, $f FAILED (log below)"; tail -n 120 "$log"
  fi
}

cargo_counts() {
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?/) p += $(i-1); if ($(i) ~ /^failed;?/) f += $(i-1) } }
       END { print p + 0, f + 0 }' "$1"
}

line_counts() {  # the last "N passed, M failed" line
  grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n 1 | awk '{ print $1, $3 }'
}

eunit_counts() {
  if grep -qE 'All [0-9]+ tests passed' "$1"; then
    grep -oE 'All [0-9]+ tests passed' "$1" | tail -n 1 | awk '{ print $2, 0 }'
  else
    grep -oE '[0-9]+ tests, [0-9]+ failures' "$1" | tail -n 1 | awk '{ print $1 - $3, $3 }'
  fi
}

ct_counts() {
  if grep -qE 'All [0-9]+ tests passed' "$1"; then
    grep -oE 'All [0-9]+ tests passed' "$1" | tail -n 1 | awk '{ print $2, 0 }'
  else
    f=$(grep -oE 'Failed [0-9]+ tests?' "$1" | tail -n 1 | awk '{ print $2 }')
    p=$(grep -oE 'Passed [0-9]+ tests?' "$1" | tail -n 1 | awk '{ print $2 }')
    echo "${p:-0} ${f:-1}"
  fi
}

export CARGO_TERM_COLOR=never
check rustfmt cargo fmt --all -- --check
check clippy cargo clippy --workspace --all-targets -- -D warnings
if [ -d nif ]; then check clippy-nif cargo clippy -p session-ha-nif --all-targets -- -D warnings; fi
counted cargo-test cargo_counts cargo test --workspace
check bench-smoke cargo bench -p session-ha-benches -- --test
if [ -x native_src/run_tests.sh ]; then
  counted c-abi line_counts native_src/run_tests.sh
fi
if [ -f erlang/rebar.config ]; then
  cd "$root/erlang"
  counted eunit eunit_counts rebar3 eunit
  check dialyzer rebar3 dialyzer
  check xref rebar3 xref
  counted common-test ct_counts rebar3 ct --sname "sha_ct_$$"
  cd "$root"
fi

note "elapsed" "$(( $(date +%s) - start )) s"
rm -rf "$logdir"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
