#!/usr/bin/env bash
# Runs every test of session-ha and ends with one line "N passed, M failed" counting
# everything it ran; exits non-zero on any failure. Installs what is missing first.
#
#   rustfmt check, clippy -D warnings (workspace and the NIF crate)    1 check each
#   cargo test --workspace                                             every Rust test
#   cargo bench -- --test (benchmarks still build and run once)        1 check
#   native_src/run_tests.sh (C ABI tests, plain and under valgrind)    every C test
#   scripts/build_nif.sh: the NIF, built once (NIF version 2.16)       1 check
#   the Erlang checks (scripts/erlang_checks.sh), on each runtime:     every Erlang test
#     rebar3 eunit, rebar3 dialyzer, rebar3 xref (1 check each), rebar3 ct (multi-node
#     suites with OTP's peer)
#       on the host's OTP 25
#       on OTP 27 (Debian trixie), erlmcp's minimum, in a debootstrap chroot that
#       scripts/otp_chroot.sh builds once under _otp/ (in the background, while the Rust
#       tests run) and reuses
#
# OTP 29 (Debian sid): scripts/test_otp29.sh, the same checks in a sid chroot, kept out of
# this command to keep it within 20 minutes on 2 cores (docs/DECISIONS.md).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT
start=$SECONDS
. scripts/counts.sh

# The OTP 27 chroot: built (or found) in the background meanwhile.
bash scripts/otp_chroot.sh build trixie >"$logdir/chroot-trixie.log" 2>&1 &
chroot_pid=$!
chroot_ready() {  # waits for its build; its status and log
  wait "$chroot_pid"
  local status=$?
  cat "$logdir/chroot-trixie.log"
  return $status
}

# erlang_run LABEL CMD...: the Erlang checks on one runtime; their lines are shown as
# they come, their closing "N passed, M failed" line is added to the totals.
erlang_run() {
  local label=$1; shift
  local log="$logdir/erlang-$label.log" status p f t0=$SECONDS
  "$@" 2>&1 | tee "$log" | grep -vE '^[0-9]+ passed, [0-9]+ failed$'
  status=${PIPESTATUS[0]}
  read -r p f < <(line_counts "$log")
  p=${p:-0}; f=${f:-0}
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f))
  note "$label" "$p passed, $f failed ($((SECONDS - t0)) s)"
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
  check nif-build bash scripts/build_nif.sh
  host_otp=$(erl -noshell -eval 'io:put_chars(erlang:system_info(otp_release)), halt().')
  erlang_run "OTP $host_otp (host)" bash scripts/erlang_checks.sh
  check otp27-chroot chroot_ready
  erlang_run "OTP 27 (trixie chroot)" bash scripts/otp_chroot.sh test trixie
else
  chroot_ready >/dev/null 2>&1
fi

note "elapsed" "$((SECONDS - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
