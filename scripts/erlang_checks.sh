#!/usr/bin/env bash
# The Erlang checks on whatever Erlang/OTP is on the PATH: EUnit, Dialyzer, xref and the
# Common Test suites (multi-node ones with OTP's peer, so it starts a distributed node).
# Prints one line per step, labelled (e.g. "OTP 27"), and ends with "N passed, M failed";
# exits non-zero on any failure. test.sh runs it on the host and, through otp_chroot.sh,
# inside the chroots.
#
#   bash scripts/erlang_checks.sh [LABEL]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
label=${1:-OTP $(erl -noshell -eval 'io:put_chars(erlang:system_info(otp_release)), halt().')}
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT
. "$here/counts.sh"
cd "$here/../erlang"

counted "eunit ($label)" eunit_counts rebar3 eunit
check "dialyzer ($label)" rebar3 dialyzer
check "xref ($label)" rebar3 xref
counted "common-test ($label)" ct_counts rebar3 ct --sname "sha_ct_$$"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
