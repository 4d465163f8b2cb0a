#!/bin/sh
# Builds the session-ha NIF and installs it as erlang/priv/erlmcp_session_ha_nif.so.
# Called by rebar3 before compiling erlang/ (a pre_hooks entry runs one command only, hence
# this script). Quiet when the installed library is already current.
#
# The library is installed by copying to a temporary file next to the target and renaming
# it over the target: a VM that has the old library loaded keeps its mapping intact, where
# copying over the file in place would change the code under it.
#
# With SESSION_HA_PREBUILT_NIF=1 (set by otp_chroot.sh, where there is no cargo) it only
# checks that the library built on the host is in place: one build serves every OTP.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${SESSION_HA_PREBUILT_NIF:-}" = 1 ]; then
    if [ -f "$root/erlang/priv/erlmcp_session_ha_nif.so" ]; then
        exit 0
    fi
    echo "build_nif.sh: SESSION_HA_PREBUILT_NIF=1 but erlang/priv/erlmcp_session_ha_nif.so is missing" >&2
    exit 1
fi
target_dir=${CARGO_TARGET_DIR:-$root/target}
case $target_dir in
    /*) ;;
    *) target_dir=$root/$target_dir ;;
esac

cd "$root"
cargo build --release --quiet -p session-ha-nif

src=$target_dir/release/libsession_ha_nif.so
priv=$root/erlang/priv
dst=$priv/erlmcp_session_ha_nif.so

if [ ! -f "$src" ]; then
    echo "build_nif.sh: cargo did not produce $src" >&2
    exit 1
fi
mkdir -p "$priv"
if [ -f "$dst" ] && cmp -s "$src" "$dst"; then
    exit 0
fi
tmp=$(mktemp "$priv/.erlmcp_session_ha_nif.so.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cp "$src" "$tmp"
chmod 0755 "$tmp"
mv -f "$tmp" "$dst"
trap - EXIT
echo "build_nif.sh: installed $dst"
