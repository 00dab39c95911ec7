# Runs inside the guest (or natively on a ublk kernel), started by scripts/bench.
# Writes $NBDGATE_RESULTS/bench.csv: contender,workload,value,unit (the mean of the rounds)
# and $NBDGATE_RESULTS/rounds.csv: contender,workload,round,value.
#
# Every contender is attached first and stays attached, so the cells can be interleaved: for each
# workload, round after round, every contender in turn. TCG guests drift in speed by tens of percent
# over minutes; interleaving spreads that drift over all contenders instead of one.
set -u
[ -z "${BENCH_PERF:-}" ] || { echo -1 > /proc/sys/kernel/perf_event_paranoid; echo 0 > /proc/sys/kernel/kptr_restrict; }
runtime=${BENCH_RUNTIME:-10} ramp=${BENCH_RAMP:-5} warmup=${BENCH_WARMUP:-30} warmup_each=${BENCH_WARMUP_EACH:-20} conns=${BENCH_CONNS:-2}
size=${BENCH_SIZE:-1G} rounds=${BENCH_ROUNDS:-2} only=${BENCH_ONLY:-}
csv="$NBDGATE_RESULTS/bench.csv"; : > "$csv"
: > "$NBDGATE_RESULTS/profile.csv"
raw="$NBDGATE_RESULTS/rounds.csv"; : > "$raw"
tls=${BENCH_TLS:-}
if [ -n "$tls" ]; then
  # Kernel TLS's ciphers: a real system's modprobe loads them; the guest's runner unpacked them.
  if [ -n "${BENCH_MODULES:-}" ]; then
    for m in $(cat "$BENCH_MODULES/on-demand"); do /bin/busybox insmod "$BENCH_MODULES/$m.ko" 2>/dev/null; done
  fi
  nbdkit -f -p 10809 -i 127.0.0.1 --tls=on --tls-certificates="$tls/server" memory "$size" &
else
  nbdkit -f -p 10809 -i 127.0.0.1 memory "$size" &
fi
server=$!
pids=""
ublk=${BENCH_UBLKSRV:-}
trap 'kill $pids $server 2>/dev/null; nbd-client -d /dev/nbd0 >/dev/null 2>&1; [ -z "$ublk" ] || { "$ublk" del -n 90; "$ublk" del -n 91; } >/dev/null 2>&1' EXIT
for i in $(seq 50); do nbdinfo --size nbd://127.0.0.1:10809/bench >/dev/null 2>&1 && break; sleep 0.2; done

names="nbd.ko" devs="/dev/nbd0"
ko_tls=""
[ -z "$tls" ] || ko_tls="-cacertfile $tls/client/ca-cert.pem -certfile $tls/client/client-cert.pem -keyfile $tls/client/client-key.pem -tlshostname localhost"
nbd-client 127.0.0.1 10809 /dev/nbd0 -N bench -C "$conns" -b 4096 $ko_tls >/tmp/nbd-client.log 2>&1 \
  || { echo "bench: nbd-client failed:"; cat /tmp/nbd-client.log; exit 1; }
default_contenders="nbdgate-zero-copy=--buffer-mode zero-copy;nbdgate-user-copy=--buffer-mode user-copy;nbdgate-copy=--buffer-mode copy"
if [ -n "$tls" ]; then
  tls_uri="nbds://127.0.0.1:10809/bench?tls-certificates=$tls/client"
  # Three cold JVMs' TLS handshakes at once on the instruction clock took longer than the default 30 s.
  wait="--connect-timeout 600"
  default_contenders="nbdgate-kernel-tls=$tls_uri --buffer-mode zero-copy $wait;nbdgate-userspace-tls=$tls_uri --buffer-mode zero-copy $wait%-Dnbdgate.kernelTls=false;nbdgate-plaintext=--buffer-mode zero-copy $wait"
fi
# nbdgate contenders: NAME=ATTACH-OPTIONS[@JAR][%JVM-OPTIONS] entries separated by ';' (BENCH_NBDGATE
# overrides, e.g. to compare settings, builds or JVM options side by side). The JVMs start side by side: under TCG each takes a
# minute or more to come up (several at once: many minutes, so each may take up to 20).
contenders=${BENCH_NBDGATE:-$default_contenders}
n=0
echo "$contenders" | tr ';' '\n' > /tmp/contenders
while IFS= read -r c; do
  [ -n "$c" ] || continue
  n=$((n + 1))
  rm -f "/tmp/dev-$n"
  opts=${c#*=} jar= jvm=
  case "$opts" in *%*) jvm=${opts##*%} opts=${opts%\%*} ;; esac
  case "$opts" in *@*) jar=${opts##*@} opts=${opts%@*} ;; esac
  uri=nbd://127.0.0.1:10809/bench
  case "$opts" in nbd*://*) uri=${opts%% *} opts=${opts#"$uri"} ;; esac
  NBDGATE_JAVA_OPTS="$jvm${NBDGATE_JAVA_OPTS:+ $NBDGATE_JAVA_OPTS}" NBDGATE_JAR=${jar:-${NBDGATE_JAR:-}} bin/nbdgate attach "$uri" --name "bench-$n" \
      --queues "$conns" $opts > "/tmp/dev-$n" 2> "/tmp/attach-$n.log" &
  pids="$pids $!"
  echo $! > "/tmp/pid-$n"
  # With TLS one at a time: three cold JVMs' handshakes at once under TCG outlast GnuTLS's own handshake
  # timeout in nbdkit, which then closes the connection (seen as ENOTCONN/EPIPE in the attach log).
  if [ -n "$tls" ]; then
    for i in $(seq 6000); do [ -s "/tmp/dev-$n" ] && break; kill -0 "$!" 2>/dev/null || break; sleep 0.2; done
  fi
done < /tmp/contenders
n=0
while IFS= read -r c; do
  [ -n "$c" ] || continue
  n=$((n + 1))
  # Until it reports its device, or its process has ended (a failed attach says why in its log).
  for i in $(seq 6000); do
    [ -s "/tmp/dev-$n" ] && break
    kill -0 "$(cat "/tmp/pid-$n")" 2>/dev/null || break
    sleep 0.2
  done
  dev=$(cat "/tmp/dev-$n" 2>/dev/null)
  if [ -b "$dev" ]; then
    names="$names ${c%%=*}" devs="$devs $dev"
  else
    echo "bench: attach of ${c%%=*} failed; its column stays empty:"; cat "/tmp/attach-$n.log"
  fi
done < /tmp/contenders

# ublksrv's nbd target (BENCH_UBLKSRV: its `ublk`, built by scripts/bench): zero copy (AUTO_BUF_REG) and copy,
# devices 90 and 91, the same server, queues and nbdgate's default depth. `ublk add` returns once the device is live.
if [ -n "$ublk" ]; then
  for m in "90 ublksrv-zc -z" "91 ublksrv-copy"; do
    set -- $m
    if "$ublk" add -t nbd -n "$1" -q "$conns" -d 128 --host 127.0.0.1 --port 10809 --export_name bench ${3:-} \
        > "/tmp/ublksrv-$1.log" 2>&1 && [ -b "/dev/ublkb$1" ]; then
      names="$names $2" devs="$devs /dev/ublkb$1"
    else
      echo "bench: ublksrv's $2 did not attach; its column stays empty:"; cat "/tmp/ublksrv-$1.log"
    fi
  done
fi

# JVM processes by contender (bin/nbdgate and the java it starts), for --profile and --perf.
n=0; : > /tmp/jvms
while [ -n "${BENCH_PROFILE:-}${BENCH_PERF:-}" ] && IFS= read -r c; do
  [ -n "$c" ] || continue
  n=$((n + 1))
  for p in $(pgrep -f -- "--name bench-$n( |\$)"); do echo "$p ${c%%=*}" >> /tmp/jvms; done
done < /tmp/contenders
echo $names | tr ' ' '\n' > /tmp/bench-names
echo $devs | tr ' ' '\n' > /tmp/bench-devs

# --profile (BENCH_PROFILE=1): where the guest's CPU time goes per I/O, by thread group. Two snapshots of
# every thread's time on CPU (/proc/*/task/*/schedstat) inside the cell's measured window; the I/Os between
# them are the cell's rate times the guest time between them. Idle is what the CPU did not spend in a thread
# (it includes interrupt time where the kernel accounts it apart). scripts/bench allows it only with one CPU
# on the instruction clock, where a thread's time is its instructions and the groups add up to 1/rate.
snap() { # file: "pid tid ns comm" per thread, then "uptime SECONDS"; shell builtins only, no process
  # started inside the window (its time would be counted nowhere)
  for d in /proc/[0-9]*/task/[0-9]*; do
    pid=${d#/proc/} pid=${pid%%/*} tid=${d##*/}
    read -r comm 2>/dev/null < "$d/comm" || continue
    read -r ns rest 2>/dev/null < "$d/schedstat" || continue
    echo "$pid $tid $ns $comm"
  done > "$1"
  read -r up idle < /proc/uptime
  echo "uptime $up" >> "$1"
}
profile_cell() { # contender workload round value [KiB per I/O when the value is MiB/s]
  awk -v c="$1" -v w="$2" -v r="$3" -v v="$4" -v kib="${5:-0}" -v ncpu="$(nproc)" '
    FILENAME == "/tmp/jvms" { jvm[$1] = $2; next }
    $1 == "uptime" { if (FILENAME == "/tmp/snap-1") t1 = $2; else t2 = $2; next }
    FILENAME == "/tmp/snap-1" { before[$2] = $3; next }
    {
      g = "other"; comm = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", comm)
      if ($1 in jvm) g = (jvm[$1] == c ? (comm ~ /^vert\.x-eventloo/ ? "jvm-loops" : "jvm-other") : "idle-jvms")
      else if (comm == "fio") g = "fio"
      else if (comm ~ /^nbdkit/) g = "nbdkit"
      else if (comm ~ /^kworker/) g = "kworker"
      else if (comm ~ /^ksoftirqd/) g = "ksoftirqd"
      else if (comm ~ /^iou-/) g = "io_uring-workers"
      d = $3 - ($2 in before ? before[$2] : 0); if (d > 0) { ns[g] += d; sum += d }
    }
    END {
      ios = v * (t2 - t1) * (kib > 0 ? 1024 / kib : 1)   # the I/Os between the snapshots
      if (ios <= 0) exit
      ns["idle"] = ncpu * (t2 - t1) * 1e9 - sum
      for (g in ns) printf "%s,%s,%s,%s,%.0f\n", c, w, r, g, ns[g] / ios
    }' /tmp/jvms /tmp/snap-1 /tmp/snap-2 >> "$NBDGATE_RESULTS/profile.csv"
}

# --perf (BENCH_PERF=1): in round 1, perf samples the whole guest (cpu-clock, call graphs) during the cell's
# measured window; the JIT's symbols come from the contender's JVMs (jcmd Compiler.perfmap). One report per
# cell in $NBDGATE_RESULTS/perf/: the time by thread and binary, then by symbol. perf starts disabled before
# the cell (reading every process's mappings takes it seconds) and its control fifo opens the window.
# Sampling slows every contender's cell alike; compare its shares, not its rates with a run without it.
perf_start() {
  rm -f /tmp/perf-ctl /tmp/perf-ack /tmp/perf.err; mkfifo /tmp/perf-ctl /tmp/perf-ack
  perf record -D -1 --control fifo:/tmp/perf-ctl,/tmp/perf-ack -F 499 -a -g -o /tmp/perf.data 2>/tmp/perf.err &
  perf_pid=$!
  for i in $(seq 3000); do grep -q "Events disabled" /tmp/perf.err 2>/dev/null && return 0; sleep 0.2; done
  echo "bench: perf did not start; this cell is measured without it:"; cat /tmp/perf.err
  kill "$perf_pid" 2>/dev/null; wait "$perf_pid"; return 1
}
perf_ctl() { echo "$1" > /tmp/perf-ctl; read -r ack < /tmp/perf-ack; }
perf_report() { # contender workload
  kill -INT "$perf_pid"; wait "$perf_pid"
  awk -v c="$1" '$2 == c { print $1 }' /tmp/jvms | while read -r p; do "${JAVA_HOME:+$JAVA_HOME/bin/}jcmd" "$p" Compiler.perfmap >/dev/null 2>&1; done
  mkdir -p "$NBDGATE_RESULTS/perf"
  { perf report -i /tmp/perf.data --no-children --sort comm,dso --stdio -g none --percent-limit 0.1 2>/dev/null
    perf report -i /tmp/perf.data --no-children --sort comm,dso,sym --stdio -g none --percent-limit 0.1 2>/dev/null
  } | grep -v '^#' | grep -v '^$' > "$NBDGATE_RESULTS/perf/$2-$1.txt"
}

fio_cell() { # device rw bs iodepth -> fio terse output
  fio --name=b --filename="$1" --allow_file_create=0 --rw="$2" --bs="$3" --iodepth="$4" \
      --ioengine=io_uring --direct=1 \
      --runtime="$runtime" --ramp_time="$ramp" --time_based --size="$size" --numjobs=1 --group_reporting \
      --output-format=terse --terse-version=3 2>/dev/null </dev/null
}

# Warm-up, unmeasured, identical for every contender: a JVM compiles its data path in the first
# tens of seconds under TCG; nbd.ko's caches and the server warm up too.
warm_up() { # device rw bs iodepth seconds: unmeasured I/O
  fio --name=warm --filename="$1" --allow_file_create=0 --rw="$2" --bs="$3" --iodepth="$4" \
      --ioengine=io_uring --direct=1 --runtime="$5" --time_based --size="$size" >/dev/null 2>&1 </dev/null
}
for dev in $devs; do warm_up "$dev" randrw 4k 32 "$warmup"; done

# Footprint after the warm-up: resident and anonymous memory and threads of each contender's processes
# (nbdgate: its JVM; nbd.ko: nbd-client's resident processes, e.g. its TLS proxies), and the names of the
# threads, to $NBDGATE_RESULTS/footprint.csv and threads-CONTENDER.txt.
: > "$NBDGATE_RESULTS/footprint.csv"
n=0
while IFS= read -r c; do
  [ -n "$c" ] || continue
  n=$((n + 1))
  echo "${c%%=*} $(pgrep -f -- "--name bench-$n( |\$)" | tr '\n' ' ')"
done < /tmp/contenders > /tmp/footprint-pids
echo "nbd.ko $(pgrep -x nbd-client | tr '\n' ' ')" >> /tmp/footprint-pids
if [ -n "$ublk" ]; then
  echo "ublksrv-zc $(pgrep -f -- "^ublk.nbd add .*-n 90( |\$)" | tr '\n' ' ')" >> /tmp/footprint-pids
  echo "ublksrv-copy $(pgrep -f -- "^ublk.nbd add .*-n 91( |\$)" | tr '\n' ' ')" >> /tmp/footprint-pids
fi
while read -r name pids; do
  rss=0 anon=0 threads=0
  for p in $pids; do
    r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null); rss=$((rss + ${r:-0}))
    a=$(awk '/^RssAnon:/ { print $2 }' "/proc/$p/status" 2>/dev/null); anon=$((anon + ${a:-0}))
    t=$(awk '/^Threads:/ { print $2 }' "/proc/$p/status" 2>/dev/null); threads=$((threads + ${t:-0}))
  done
  for p in $pids; do cat /proc/"$p"/task/*/comm 2>/dev/null; done | sort | uniq -c > "$NBDGATE_RESULTS/threads-$name.txt"
  echo "$name,$rss,$anon,$threads,$(echo $pids | wc -w)" >> "$NBDGATE_RESULTS/footprint.csv"
done < /tmp/footprint-pids

# Queue depth 1 is what an fsync, a single-threaded copy or a metadata walk sees: its rows also give the mean
# latency (submission to completion) and the 99th percentile of completion latency, in microseconds.
for w in "randread 4k 32 4k-randread-qd32 IOPS" "randwrite 4k 32 4k-randwrite-qd32 IOPS" \
         "randread 4k 1 4k-randread-qd1 IOPS" "randwrite 4k 1 4k-randwrite-qd1 IOPS" \
         "randread 4k 4 4k-randread-qd4 IOPS" \
         "read 64k 8 64k-read-qd8 MiB/s" "write 64k 8 64k-write-qd8 MiB/s" \
         "read 512k 8 512k-read-qd8 MiB/s" "write 512k 8 512k-write-qd8 MiB/s" \
         "read 1M 8 1M-read-qd8 MiB/s" "write 1M 8 1M-write-qd8 MiB/s"; do
  set -- $w
  rw=$1 bs=$2 qd=$3 label=$4 unit=$5
  case ",${only:-$label}," in *",$label,"*) ;; *) continue ;; esac
  # Each workload's own warm-up, unmeasured, every contender in turn: a JVM compiles the paths of a request
  # shape when it first meets it (a 64 KiB READ is received differently from a 4 KiB one), and a long-running
  # daemon has long done so. What a fresh attach costs is --startup's table, not these rows.
  if [ "$warmup_each" -gt 0 ]; then
    for dev in $devs; do
      echo "  warm-up $label on $dev"
      warm_up "$dev" "$rw" "$bs" "$qd" "$warmup_each"
    done
  fi
  for r in $(seq "$rounds"); do
    # Round r starts with contender r (mod their number): nobody is always first after a quiet spell.
    order=$(paste -d' ' /tmp/bench-names /tmp/bench-devs | awk -v r="$r" '{ l[NR] = $0 }
      END { for (i = 0; i < NR; i++) print l[(i + r - 1) % NR + 1] }')
    echo "$order" | while read -r contender dev; do
      if [ -n "${BENCH_PROFILE:-}" ]; then
        fio_cell "$dev" "$rw" "$bs" "$qd" > /tmp/fio-out &
        sleep $((ramp + 1)); snap /tmp/snap-1; sleep $((runtime - 2)); snap /tmp/snap-2
        wait $!; t=$(cat /tmp/fio-out)
      elif [ -n "${BENCH_PERF:-}" ] && [ "$r" = 1 ] && perf_start; then
        fio_cell "$dev" "$rw" "$bs" "$qd" > /tmp/fio-out &
        f=$!
        sleep $((ramp + 1)); perf_ctl enable; sleep $((runtime - 2)); perf_ctl disable
        wait $f; t=$(cat /tmp/fio-out)
        perf_report "$contender" "$label"
      else
        t=$(fio_cell "$dev" "$rw" "$bs" "$qd")
      fi
      # terse v3: 7/8 = read bandwidth KiB/s / IOPS, 48/49 = write bandwidth KiB/s / IOPS; 40/81 = read/write
      # mean latency (us), 30/71 = read/write completion latency's 99th percentile ("99.000000%=us")
      case "$rw" in
        randread) v=$(echo "$t" | cut -d';' -f8) lat=$(echo "$t" | cut -d';' -f40) p99=$(echo "$t" | cut -d';' -f30) ;;
        randwrite) v=$(echo "$t" | cut -d';' -f49) lat=$(echo "$t" | cut -d';' -f81) p99=$(echo "$t" | cut -d';' -f71) ;;
        read) v=$(echo "$t" | awk -F';' '{printf "%.1f", $7/1024}') ;;
        write) v=$(echo "$t" | awk -F';' '{printf "%.1f", $48/1024}') ;;
      esac
      echo "$contender,$label,$r,${v:-0}" >> "$raw"
      echo "  round $r $contender $label: ${v:-0} $unit"
      if [ "$qd" = 1 ]; then
        echo "$contender,$label-mean-latency,$r,$(printf '%.0f' "${lat:-0}")" >> "$raw"
        echo "$contender,$label-p99-latency,$r,${p99#*=}" >> "$raw"
      fi
      if [ -n "${BENCH_PROFILE:-}" ]; then
        kib=0 # the MiB/s rows' I/Os are bs each
        [ "$unit" != MiB/s ] || case "$bs" in *k) kib=${bs%k} ;; *M) kib=$((${bs%M} * 1024)) ;; esac
        profile_cell "$contender" "$label" "$r" "${v:-0}" "$kib"
      fi
    done
  done
  rows="$label,$unit"
  [ "$qd" != 1 ] || rows="$rows $label-mean-latency,us $label-p99-latency,us"
  for row in $rows; do
    awk -F, -v l="${row%,*}" -v u="${row#*,}" '$2 == l { s[$1] += $4; n[$1]++; if (!($1 in o)) { o[$1] = ++k; c[k] = $1 } }
      END { for (i = 1; i <= k; i++) printf "%s,%s,%.1f,%s\n", c[i], l, s[c[i]] / n[c[i]], u }' "$raw" >> "$csv"
  done
done
exit 0
