#!/usr/bin/env bash
# A newer Erlang/OTP from Debian's own packages, in a debootstrap chroot built once and cached
# under _otp/ (git-ignored), to run the Erlang checks on the OTP versions erlmcp runs on.
#
#   bash scripts/otp_chroot.sh build SUITE   build _otp/SUITE once (quiet when already there;
#                                            into one built before packages were added to
#                                            this script, it installs them)
#   bash scripts/otp_chroot.sh test SUITE    build if needed, then run scripts/erlang_checks.sh
#                                            inside it on a copy of erlang/ (exit status and
#                                            closing "N passed, M failed" line are its own)
#
#   SUITE: trixie (OTP 27, erlmcp's minimum) or sid (OTP 29).
#
# Unattended on a fresh Debian machine as root: installs debootstrap when missing, takes the
# mirror from the host's apt sources, runs everything in a private mount namespace (the
# /proc bind mount and the ones debootstrap makes vanish with the process, even when it is
# killed), and writes a stamp only once the chroot is complete, so an interrupted build is
# thrown away and redone. The NIF is not built here: the copy carries the erlang/priv
# library built on the host (NIF version 2.16 loads on OTP 25, 27 and 29).
set -euo pipefail

usage() { echo "usage: otp_chroot.sh build|test trixie|sid" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1 suite=$2
case $cmd in build|test) ;; *) usage ;; esac
case $suite in trixie|sid) ;; *) usage ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
cache=$root/_otp
dir=$cache/$suite
stamp=$dir/.session-ha-chroot
pkgs="erlang-nox erlang-eunit erlang-common-test erlang-dialyzer erlang-tools erlang-mnesia rebar3"
want="session-ha chroot v1: $suite: $pkgs"
# Packages added since chroots were first built (TLS distribution: ssl and what it needs).
# A fresh build installs them with the rest; a chroot built before is kept and they are
# installed into it when missing (checked on every run, quiet when present). They are not
# in the stamp, so that no existing chroot is rebuilt for them.
extra_pkgs="erlang-ssl erlang-public-key erlang-crypto erlang-asn1"

# debootstrap, mount and chroot need root.
if [ "$(id -u)" -ne 0 ]; then
  exec sudo bash "$0" "$@"
fi

mounted_under() {  # any mount point at or below $1?
  awk -v d="$1" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mounts
}

build() {
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  local started tmp log mirror
  started=$(date +%s)
  mkdir -p "$cache"
  log=$cache/$suite.build.log
  tmp=$cache/.$suite.partial
  for d in "$dir" "$tmp"; do
    if mounted_under "$d"; then
      echo "otp_chroot: something is mounted under $d; unmount it first" >&2
      exit 1
    fi
  done
  rm -rf "$tmp" "$dir"
  echo "otp_chroot: building the $suite chroot in $dir (log: $log)" >&2
  if ! command -v debootstrap >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq debootstrap >/dev/null
  fi
  # The host's Debian mirror (deb822 or one-line sources); debootstrap's default otherwise.
  mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" && $2 ~ /^http/ && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
  fi
  if ! unshare --mount --propagation private \
         debootstrap --variant=minbase "$suite" "$tmp" ${mirror:+"$mirror"} >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "otp_chroot: debootstrap $suite failed" >&2
    exit 1
  fi
  cp /etc/resolv.conf "$tmp/etc/resolv.conf"
  # Packages must not start services (epmd) inside the chroot.
  printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"
  chmod 0755 "$tmp/usr/sbin/policy-rc.d"
  # sid's Release file carries a Valid-Until date that a mirror serving a fixed snapshot
  # passes; the packages are still checked against the archive keys.
  echo 'Acquire::Check-Valid-Until "false";' > "$tmp/etc/apt/apt.conf.d/99session-ha"
  if ! chroot_install "$tmp" "$pkgs $extra_pkgs" >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "otp_chroot: installing Erlang in the $suite chroot failed" >&2
    exit 1
  fi
  echo "$want" > "$tmp/.session-ha-chroot"
  mv "$tmp" "$dir"
  echo "otp_chroot: $suite chroot ready in $(( $(date +%s) - started )) s" >&2
}

# chroot_install DIR PKGS: apt-get install PKGS inside the chroot at DIR.
chroot_install() {
  unshare --mount --propagation private sh -c '
    mount --bind /proc "$1/proc" &&
    chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
      sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $2 && apt-get clean"
  ' sh "$1" "$2"
}

# Installs into the chroot whichever of $extra_pkgs it lacks.
install_extra() {
  local p missing=""
  for p in $extra_pkgs; do
    if [ "$(chroot "$dir" dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" != "ii " ]; then
      missing="$missing $p"
    fi
  done
  [ -n "$missing" ] || return 0
  local log=$cache/$suite.build.log
  echo "otp_chroot: installing$missing into the $suite chroot (log: $log)" >&2
  if ! chroot_install "$dir" "$missing" >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "otp_chroot: installing$missing in the $suite chroot failed" >&2
    exit 1
  fi
}

# Copies the application (sources, tests, the host-built NIF) and the check scripts into the
# chroot; the chroot's _build (compiled code, Dialyzer PLT) is kept between runs.
stage() {
  local work=$dir/work
  mkdir -p "$work/erlang" "$work/scripts"
  find "$work/erlang" -mindepth 1 -maxdepth 1 ! -name _build -exec rm -rf {} +
  if [ ! -f "$root/erlang/priv/erlmcp_session_ha_nif.so" ]; then
    echo "otp_chroot: erlang/priv/erlmcp_session_ha_nif.so is missing; run scripts/build_nif.sh" >&2
    exit 1
  fi
  for f in rebar.config rebar.lock src include test priv; do
    [ -e "$root/erlang/$f" ] && cp -rL "$root/erlang/$f" "$work/erlang/"
  done
  cp -L "$root/scripts/erlang_checks.sh" "$root/scripts/counts.sh" "$root/scripts/build_nif.sh" "$work/scripts/"
  cp /etc/hosts "$dir/etc/hosts"   # so that -sname nodes resolve this host's name
}

run_checks() {
  local label
  label="OTP $(chroot "$dir" /usr/bin/env -i PATH=/usr/bin:/bin \
    erl -noshell -eval 'io:put_chars(erlang:system_info(otp_release)), halt().')"
  # One epmd for every runtime: the host's (started here if none runs), so that no daemon
  # is left running inside the chroot.
  if command -v epmd >/dev/null 2>&1; then epmd -daemon; fi
  unshare --mount --propagation private sh -c '
    mount --bind /proc "$1/proc" &&
    exec chroot "$1" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
      SESSION_HA_PREBUILT_NIF=1 bash /work/scripts/erlang_checks.sh "$2"
  ' sh "$dir" "$label"
}

build
install_extra
if [ "$cmd" = test ]; then
  stage
  run_checks
fi
