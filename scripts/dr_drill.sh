#!/usr/bin/env bash
# The DR drill: three regions as real BEAM nodes on this machine, replicating over Erlang
# distribution, each on the default data directory (_drill/data/session_ha/<region>).
# Installs what is missing, builds the NIF and the Erlang application, runs the drill and
# prints its summary table. Exit status 0 when no session was lost and every step passed.
#
#   bash scripts/dr_drill.sh [WRITERS SECONDS]      (default: 32 writers for 3 seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bash scripts/setup.sh
(cd erlang && rebar3 compile >/dev/null)
ebin="$root/erlang/_build/default/lib/erlmcp_session_ha/ebin"
mkdir -p _drill
cd _drill
rm -rf data
args=""
if [ $# -eq 2 ]; then args="[\"$1\", \"$2\"]"; else args="[]"; fi
exec erl -noshell -sname "sha_drill_$$" -pa "$ebin" -eval "erlmcp_session_ha_drill:main($args)."
