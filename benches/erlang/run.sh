#!/usr/bin/env bash
# Erlang load benchmark of erlmcp_session_ha: builds the application (and with it the NIF, in
# release) and runs session_ha_bench.erl on a distributed node, which starts the region nodes
# it needs with OTP peer. See BENCHMARKS.md, section Erlang.
#
#   benches/erlang/run.sh                      every part, 3 s per load row (about 4 minutes)
#   benches/erlang/run.sh secs=5               every part as measured in BENCHMARKS.md (about 5)
#   benches/erlang/run.sh load secs=5          one part: load | lag | failover | heal
#
# Data goes to a fresh directory under $SESSION_HA_BENCH_DIR (default /tmp), removed at the
# end. Exits non-zero if a check failed (a lost session, a run that crashed).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
(cd "$root/erlang" && rebar3 compile)
ebin=${CARGO_TARGET_DIR:-$root/target}/session_ha_bench/ebin
mkdir -p "$ebin"
erlc -Wall -Werror -o "$ebin" "$root/benches/erlang/session_ha_bench.erl"
args=()
for a in "$@"; do args+=("\"$a\""); done
list=$(IFS=,; echo "${args[*]:-}")
exec erl -noshell -sname "session_ha_bench_$$" -setcookie "session_ha_bench_$$" \
    -kernel prevent_overlapping_partitions false \
    -pa "$root"/erlang/_build/default/lib/*/ebin -pa "$ebin" \
    -eval "session_ha_bench:main([$list])"
