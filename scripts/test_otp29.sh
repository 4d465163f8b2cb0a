#!/usr/bin/env bash
# The Erlang checks (EUnit, Dialyzer, xref, Common Test with the multi-node suites) on
# OTP 29, from Debian sid, in a debootstrap chroot built once under _otp/sid and reused.
# Kept out of scripts/test.sh so that the test command stays within 20 minutes on 2 cores
# from a fresh clone on a busy machine (docs/DECISIONS.md, "Runtimes and the test
# command"): about 3 minutes the first time (chroot and Dialyzer PLT), 1.5 after that.
# Ends with "N passed, M failed"; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
bash scripts/build_nif.sh || { echo "0 passed, 1 failed"; exit 1; }
exec bash scripts/otp_chroot.sh test sid
