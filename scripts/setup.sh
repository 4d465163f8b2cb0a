#!/usr/bin/env bash
# Installs what building and testing session-ha needs, when it is missing: Erlang/OTP 25
# (erts headers, EUnit, Common Test, Dialyzer, and ssl with public_key, crypto and asn1 for
# the TLS distribution suite), rebar3, a C compiler, valgrind and
# debootstrap (for the newer OTP chroots of scripts/otp_chroot.sh) from Debian, and the Rust
# toolchain's clippy/rustfmt components. Idempotent; silent when
# everything is already there.
set -euo pipefail

need=()
command -v erl >/dev/null 2>&1 || need+=(erlang-nox)
[ -d /usr/lib/erlang/usr/include ] || need+=(erlang-dev)
command -v rebar3 >/dev/null 2>&1 || need+=(rebar3)
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if command -v erl >/dev/null 2>&1; then
  libdir=$(erl -noshell -eval 'io:format("~s", [code:lib_dir()]), halt().')
  ls "$libdir" | grep -q '^eunit-' || need+=(erlang-eunit)
  ls "$libdir" | grep -q '^common_test-' || need+=(erlang-common-test)
  ls "$libdir" | grep -q '^dialyzer-' || need+=(erlang-dialyzer)
  ls "$libdir" | grep -q '^ssl-' || need+=(erlang-ssl)
  ls "$libdir" | grep -q '^public_key-' || need+=(erlang-public-key)
  ls "$libdir" | grep -q '^crypto-' || need+=(erlang-crypto)
  ls "$libdir" | grep -q '^asn1-' || need+=(erlang-asn1)
else
  need+=(erlang-eunit erlang-common-test erlang-dialyzer erlang-ssl erlang-public-key erlang-crypto erlang-asn1)
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (https://rustup.rs) and rerun" >&2
  exit 1
fi
if command -v rustup >/dev/null 2>&1; then
  for c in clippy rustfmt; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add -q "$c" >/dev/null 2>&1 || true
  done
fi
