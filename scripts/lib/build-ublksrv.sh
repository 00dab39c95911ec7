# Builds ublksrv's `ublk` (its nbd target is the ublk.nbd contender of scripts/bench) from the source trees the
# user points at, against a liburing built from source too (ublksrv needs one newer than Debian 12's 2.3).
# Sourced by scripts/bench: build_ublksrv UBLKSRV_SRC LIBURING_SRC OUT; prints OUT/ublk's path. The sources are
# copied, never built in place; -O2, static against liburing and libublksrv, so the guest needs no library path.
build_ublksrv() {
  local src=$1 uring=$2 out=$3 n
  [ -f "$src/configure.ac" ] && [ -d "$src/targets/nbd" ] \
    || die "bench: --ublksrv: '$src' is not a ublksrv source tree (github.com/ublk-org/ublksrv)"
  [ -f "$uring/src/include/liburing.h" ] \
    || die "bench: --liburing: '$uring' is not a liburing source tree (github.com/axboe/liburing)"
  ensure_packages autoconf automake libtool g++ pkg-config make
  n=$(nproc)
  rm -rf "$out"; mkdir -p "$out"
  cp -a "$uring" "$out/liburing"; cp -a "$src" "$out/ublksrv"
  log "building liburing from $uring"
  (cd "$out/liburing" && ./configure --prefix="$out/liburing-root" >/dev/null 2>&1 && make -s -j"$n" -C src >/dev/null 2>&1 \
     && make -s install >/dev/null 2>&1) || die "bench: building liburing failed"
  rm -f "$out"/liburing-root/lib/liburing*.so*   # link liburing statically
  log "building ublksrv from $src"
  (cd "$out/ublksrv" && autoreconf -i >/dev/null 2>&1 \
     && PKG_CONFIG_PATH="$out/liburing-root/lib/pkgconfig" ./configure --disable-shared --enable-static \
          CFLAGS="-O2 -g -I$out/liburing-root/include" CXXFLAGS="-O2 -g -I$out/liburing-root/include" \
          LDFLAGS="-L$out/liburing-root/lib" >/dev/null 2>&1 \
     && make -s -j"$n" -C include >/dev/null 2>&1 && make -s -j"$n" -C lib >/dev/null 2>&1 \
     && make -s -j"$n" ublk ublk.nbd >/dev/null 2>&1) || die "bench: building ublksrv failed (see $out/ublksrv/config.log)"
  [ -x "$out/ublksrv/ublk" ] || die "bench: the ublksrv build made no 'ublk' binary"
  echo "$out/ublksrv/ublk"
}
