#!/usr/bin/env bash
# The C ABI's test command. Builds the ffi crate, compiles the example (against the shared
# and the static library), the C quickstart from the main README.md and every
# native_src/tests/*.c with `cc -Wall -Wextra -Werror -std=c11`, and runs each once plainly
# and once under valgrind (definite or indirect leaks and invalid accesses fail).
#
# Quiet when everything passes: it prints one line, "N passed, M failed", counting every C
# test function in every run (the example and the quickstart count one each). On a failure
# it also prints what failed and its output, and exits non-zero.
#
# SHA_NO_VALGRIND=1 skips the valgrind run (for machines without it); CC picks the compiler.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0

# fail NAME LOG: counts one failure and shows its output.
fail() {
    failed=$((failed + 1))
    echo "FAILED: $1"
    [ -f "$2" ] && sed 's/^/    /' "$2"
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

cd "$root" || exit 1
if ! cargo build -q -p session-ha-ffi >"$work/build.log" 2>&1; then
    fail "cargo build -p session-ha-ffi" "$work/build.log"
    finish
fi
target=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
lib="${target:-$root/target}/debug"

CC=${CC:-cc}
cflags=(-Wall -Wextra -Werror -std=c11 -I"$here/include")
shared=(-L"$lib" -lsession_ha_ffi -Wl,-rpath,"$lib" -pthread)
static=("$lib/libsession_ha_ffi.a" -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)

# The quickstart is the first ```c block of the main README's "## C quickstart" section.
awk '/^## C quickstart/ { q = 1 } q && /^```c$/ { c = 1; next } c && /^```$/ { exit } c { print }' \
    "$here/../README.md" >"$work/quickstart.c"

# name|source|link: every program to build.
programs=("example|$here/example/replicate.c|shared"
    "example-static|$here/example/replicate.c|static"
    "quickstart|$work/quickstart.c|shared")
for t in "$here"/tests/*.c; do
    programs+=("$(basename "$t" .c)|$t|shared")
done

built=()
for p in "${programs[@]}"; do
    IFS='|' read -r name src link <<<"$p"
    if [ "$link" = static ]; then libs=("${static[@]}"); else libs=("${shared[@]}"); fi
    if [ ! -s "$src" ]; then
        echo "missing source $src" >"$work/$name.cc.log"
        fail "compile $name" "$work/$name.cc.log"
    elif "$CC" "${cflags[@]}" "$src" "${libs[@]}" -o "$work/$name" >"$work/$name.cc.log" 2>&1; then
        built+=("$name")
    else
        fail "compile $name" "$work/$name.cc.log"
    fi
done

modes=(plain)
if [ "${SHA_NO_VALGRIND:-0}" != 1 ]; then
    if command -v valgrind >/dev/null 2>&1; then
        modes+=(valgrind)
    else
        echo "valgrind is not installed (install it, or set SHA_NO_VALGRIND=1)" >"$work/valgrind.log"
        fail "valgrind" "$work/valgrind.log"
    fi
fi

for mode in "${modes[@]}"; do
    for name in "${built[@]}"; do
        run=("$work/$name")
        if [ "$mode" = valgrind ]; then
            run=(valgrind -q --leak-check=full --error-exitcode=1
                --errors-for-leak-kinds=definite,indirect "${run[@]}")
        fi
        [ "$name" = quickstart ] && run+=("$work/quickstart-store-$mode")
        out="$work/$name.$mode.log"
        (cd "$work" && timeout 600 "${run[@]}") >"$out" 2>&1
        rc=$?
        summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
        if [ -n "$summary" ]; then
            # A test program: one count per test function.
            p=${summary%% passed*}
            f=${summary#*passed, }
            f=${f%% failed}
            passed=$((passed + p))
            failed=$((failed + f))
            if [ "$f" -gt 0 ]; then
                echo "FAILED: $name ($mode): $f test(s)"
                sed 's/^/    /' "$out"
            elif [ "$rc" -ne 0 ]; then
                fail "$name ($mode): exit status $rc after its tests passed" "$out"
            fi
        elif [ "$rc" -eq 0 ]; then
            passed=$((passed + 1))
        else
            fail "$name ($mode): exit status $rc" "$out"
        fi
    done
done

finish
