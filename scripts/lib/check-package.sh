#!/usr/bin/env bash
# Checks a built nbdgate .deb (scripts/package runs it): metadata and contents against the expected
# list, the unit's paths against the contents, lintian where installed, then installs it into a fresh root with dpkg --root and
# runs the packaged nbdgate there with no JDK on PATH and JAVA_HOME unset, and purges it: nothing may
# be left. Fails with one line naming the first difference.
#
# usage: scripts/lib/check-package.sh DEB
set -euo pipefail
source "$(dirname "$(readlink -f "$0")")/common.sh"
deb=$(readlink -f "${1:?usage: check-package.sh DEB}")
work=$(mktemp -d)
serve_pid=""
cleanup() {
  [ -z "$serve_pid" ] || kill "$serve_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { die "package check: $*"; }

# ---- metadata and contents ----
info=$(dpkg-deb --info "$deb")
for field in "Package: nbdgate" "Architecture: amd64" "Depends: libc6"; do
  grep -q "^ $field" <<<"$info" || fail "control has no '$field'"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles > "$work/conffiles"
[ "$(cat "$work/conffiles")" = /etc/nbdgate/nbdgate.yaml ] \
  || fail "conffiles is not exactly /etc/nbdgate/nbdgate.yaml"

# Every file and link outside the runtime, exactly; the runtime by its essential parts.
dpkg-deb --contents "$deb" > "$work/listing"
awk '$1 !~ /^d/ { $1=$2=$3=$4=$5=""; sub(/^ +/, ""); print }' "$work/listing" | sort > "$work/contents"
cat > "$work/expected" <<'EOF'
./etc/nbdgate/nbdgate.yaml
./lib/systemd/system/nbdgate.service
./lib/udev/rules.d/60-nbdgate.rules
./usr/bin/nbdgate -> ../lib/nbdgate/bin/nbdgate
./usr/lib/nbdgate/bin/client.jvmargs
./usr/lib/nbdgate/bin/daemon.jvmargs
./usr/lib/nbdgate/bin/nbdgate
./usr/lib/nbdgate/lib/nbdgate-serving.aot
./usr/lib/nbdgate/lib/nbdgate.aot
./usr/lib/nbdgate/lib/nbdgate.jar
./usr/lib/nbdgate/udev/99-nbdgate-rootless.rules
./usr/share/doc/nbdgate/README.md
./usr/share/doc/nbdgate/changelog.gz
./usr/share/doc/nbdgate/copyright
./usr/share/lintian/overrides/nbdgate
EOF
grep -v '^./usr/lib/nbdgate/runtime/' "$work/contents" | diff -u "$work/expected" - >&2 \
  || fail "files outside the runtime differ from the expected list (above)"
for f in bin/java lib/server/libjvm.so lib/server/classes.jsa lib/modules release; do
  grep -qx "./usr/lib/nbdgate/runtime/$f" "$work/contents" || fail "runtime/$f is missing"
done
grep -q '^-rwxr-xr-x .* ./usr/lib/nbdgate/runtime/lib/jspawnhelper$' "$work/listing" \
  || fail "runtime/lib/jspawnhelper is not executable (ProcessBuilder needs it)"
# The unit must start what the package installs.
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./lib/systemd/system/nbdgate.service > "$work/unit"
sed -n 's/^Exec[A-Za-z]*=-\{0,1\}\([^ ]*\).*/\1/p' "$work/unit" | sort -u | while read -r exe; do
    [ "$exe" = /sbin/modprobe ] || grep -q "^\.$exe\( \|$\)" "$work/contents" || fail "the unit runs $exe, which the package does not install"
  done

# The rootless rule must run what the package installs.
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/lib/nbdgate/udev/99-nbdgate-rootless.rules > "$work/rootless"
sed -n 's/.*RUN+="\([^ "]*\).*/\1/p' "$work/rootless" | sort -u | while read -r exe; do
    grep -q "^\.$exe\( \|$\)" "$work/contents" || fail "the rootless udev rule runs $exe, which the package does not install"
  done

# Debian's own checker: errors fail (the overrides shipped in the package say why each is accepted).
if command -v lintian >/dev/null; then
  lintian --fail-on error --suppress-tags no-manual-page "$deb" >&2 || fail "lintian reports errors (above)"
fi

# ---- install into a fresh root ----
root=$work/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
: > "$root/var/lib/dpkg/status"
# Chrootless: the empty root has no shell for the maintainer scripts; they see DPKG_ROOT and leave systemd alone.
# --force-depends: the empty root has no libc6 package; dpkg's notes about that are shown only on failure.
dpkg_root() {
  dpkg --root="$root" --force-script-chrootless --force-depends --log=/dev/null "$@" > "$work/dpkg.out" 2>&1 \
    || { cat "$work/dpkg.out" >&2; return 1; }
}
dpkg_root --install "$deb" || fail "dpkg --root --install failed"

# No JDK reachable: PATH holds only the tools the launcher itself uses, JAVA_HOME is unset.
mkdir -p "$work/tools"
for t in bash readlink; do ln -s "$(command -v "$t")" "$work/tools/$t"; done
packaged() {
  env -i PATH="$work/tools" HOME="$work" NBDGATE_RUN_DIR="$work/run" NBDGATE_JAVA_OPTS="${NBDGATE_JAVA_OPTS:-}" \
    "$root/usr/bin/nbdgate" "$@"
}

out=$(packaged --version) || fail "nbdgate --version failed: $out"
[[ $out == "nbdgate "[0-9]* ]] || fail "nbdgate --version printed '$out'"
home=$(NBDGATE_JAVA_OPTS=-XshowSettings:properties packaged --version 2>&1 | sed -n 's/^ *java\.home = //p')
[ "$home" = "$root/usr/lib/nbdgate/runtime" ] || fail "the packaged nbdgate ran on '$home', not its own runtime"
set +e
out=$(packaged features 2>&1); rc=$?
set -e
if [ -c /dev/ublk-control ]; then
  [ $rc = 0 ] && grep -q "buffer mode:" <<<"$out" || fail "nbdgate features failed: $out"
else
  [ $rc = 1 ] && grep -q "ublk is not usable here" <<<"$out" || fail "nbdgate features without ublk: exit $rc, '$out'"
fi
# list: no Vert.x, and the client classes come from the package's AOT cache.
out=$(NBDGATE_JAVA_OPTS=-Xlog:class+load packaged list) || fail "nbdgate list failed"
grep -q "^NAME " <<<"$out" || fail "nbdgate list printed no header"
! grep -q "io\.vertx\.\|ch\.qos\.logback\." <<<"$out" || fail "nbdgate list loaded Vert.x or logback"
grep -q "io.nbdgate.gateway.cli.ListCommand source: shared objects file" <<<"$out" \
  || fail "nbdgate list did not use the package's AOT cache"
# Every class of its own (picocli's included: they are built for this JDK so that the cache takes them) from the
# cache, none read from the jar.
from_jar=$(grep " source: .*nbdgate\.jar" <<<"$out" | head -n 3) || true
[ -z "$from_jar" ] || fail "nbdgate list loaded classes from the jar, not the AOT cache: $from_jar"
# Nor a class made at run time (an annotation's proxy, a record's equals, a pattern switch, an FFM downcall): no
# AOT cache holds those, and each costs a client command milliseconds.
made=$(grep " source: __" <<<"$out" | head -n 3) || true
[ -z "$made" ] || fail "nbdgate list made classes at run time: $made"
out=$(NBDGATE_JAVA_OPTS=-Xlog:class+load packaged --help) || fail "nbdgate --help failed"
made=$(grep " source: __" <<<"$out" | head -n 3) || true
[ -z "$made" ] || fail "nbdgate --help made classes at run time: $made"
# A cache that does not fit the JVM (here: the package's cache on the build's JDK) is ignored without a word.
if [ -n "${JAVA_HOME:-}" ]; then
  out=$("$JAVA_HOME/bin/java" "@$root/usr/lib/nbdgate/bin/client.jvmargs" -XX:AOTCache="$root/usr/lib/nbdgate/lib/nbdgate.aot" \
        -jar "$root/usr/lib/nbdgate/lib/nbdgate.jar" --version 2>&1) || fail "a foreign AOT cache broke the JVM: $out"
  [[ $out == "nbdgate "[0-9]* ]] || fail "a foreign AOT cache was not ignored silently: '$out'"
fi
# The trimmed runtime carries the daemon's side too: the YAML config, Vert.x, Netty, logback, and TLS
# (BouncyCastle) on both sides: serve requires it with a pre-shared key, info speaks it.
out=$(NBDGATE_JAVA_OPTS=-Xlog:class+load packaged daemon --config "$root/etc/nbdgate/nbdgate.yaml" --check 2>&1) \
  || fail "daemon --check of the shipped config failed: $out"
# The serving commands start from their own AOT cache: their start is how long I/O waits on a take-over.
grep -q "io.nbdgate.gateway.cli.DaemonCommand source: shared objects file" <<<"$out" \
  || fail "nbdgate daemon did not use the package's serving AOT cache"
: > "$work/serve.out"
echo "check:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$work/check.psk"
# Not through the packaged() function: env execs the launcher, which execs java, so $! is the JVM itself.
env -i PATH="$work/tools" HOME="$work" "$root/usr/bin/nbdgate" serve --port 0 --export disk=memory:1M \
  --tls-psk "$work/check.psk" > "$work/serve.out" 2>&1 &
serve_pid=$!
for _ in $(seq 1 100); do grep -q "serving nbds://" "$work/serve.out" && break; sleep 0.2; done
uri=$(sed -n 's/^nbdgate: serving nbds:\/\/\([^ ,]*\).*/\1/p' "$work/serve.out")
[ -n "$uri" ] || fail "nbdgate serve did not start: $(cat "$work/serve.out")"
uri="nbds://check@$uri?tls-psk-file=$work/check.psk"
out=$(packaged info "$uri") || fail "nbdgate info $uri failed: $out"
grep -q "export-size: 1048576" <<<"$out" || fail "nbdgate info printed: $out"
grep -q "tls: TLS 1.3 .* psk:check" <<<"$out" || fail "nbdgate info did not speak TLS: $out"
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=""
grep -q " WARN \| ERROR " "$work/serve.out" && fail "nbdgate serve warned on a healthy run: $(cat "$work/serve.out")"

# ---- purge: nothing of the package may stay ----
dpkg_root --purge nbdgate || fail "dpkg --root --purge failed"
left=$(cd "$root" && find . -mindepth 1 -not -path './var' -not -path './var/lib' -not -path './var/lib/dpkg*')
[ -z "$left" ] || fail "left behind after purge: $(echo $left)"
log "package check passed: $(basename "$deb"), $(du -k "$deb" | cut -f1) KiB; installed size $(dpkg-deb -f "$deb" Installed-Size) KiB"
