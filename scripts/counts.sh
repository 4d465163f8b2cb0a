# Shared by test.sh and erlang_checks.sh (sourced, not run): run a step, count its tests, and
# keep the totals in $passed and $failed. Each step's log goes to $logdir; a failing step
# prints the end of its log.
#
#   check NAME CMD...            one pass or one fail, by exit status
#   counted NAME PARSER CMD...   the parser turns the log into "P F"; a non-zero exit with
#                                no counted failure, or nothing counted at all, is one fail

passed=${passed:-0}
failed=${failed:-0}

note() { printf '%-34s %s\n' "$1" "$2"; }

check() {
  local name=$1; shift
  local log="$logdir/$name.log" t0=$SECONDS
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1)); note "$name" "ok ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); note "$name" "FAILED ($((SECONDS - t0)) s, log below)"; tail -n 60 "$log"
  fi
}

counted() {
  local name=$1 parser=$2; shift 2
  local log="$logdir/$name.log" status p f t0=$SECONDS
  "$@" >"$log" 2>&1
  status=$?
  read -r p f < <($parser "$log")
  p=${p:-0}; f=${f:-0}
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" -eq 0 ]; then
    note "$name" "$p passed ($((SECONDS - t0)) s)"
  else
    note "$name" "$p passed, $f FAILED ($((SECONDS - t0)) s, log below)"; tail -n 120 "$log"
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
