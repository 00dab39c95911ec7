# Runs inside the guest (or natively on a ublk kernel), started by scripts/bench-memory.
# Writes $NBDGATE_RESULTS/bench.csv: row,phase,VmRSS,VmHWM,RssAnon,RssFile,VmLck,Locked,threads,iops
# (memory in kB from /proc/PID/status; iops only on the after-fio rows) and $NBDGATE_RESULTS/jvm.txt
# (the GC and heap sizes the JVM picks on this machine), plus each daemon's log as daemon-N.log, its
# largest mappings after fio as smaps-N.txt and, with -XX:NativeMemoryTracking, jcmd's summary as nmt-N.txt.
#
# Rows: two JVM baselines of the same java and options as the daemon's, then for each device count N one
# `nbdgate daemon` serving N devices (all on one nbdkit memory server), read 10 s after its last device
# came up and again right after fio ran 4k random read/write on all N devices at once.
set -u
runtime=${BENCH_RUNTIME:-20} devices=${BENCH_DEVICES:-1,4,16} queues=${BENCH_QUEUES:-1}
csv="$NBDGATE_RESULTS/bench.csv"; : > "$csv"
java="$JAVA_HOME/bin/java"
jvm_opts="@$PWD/bin/daemon.jvmargs ${NBDGATE_JAVA_OPTS:-}" # what bin/nbdgate gives the daemon

nbdkit -f -p 10809 -i 127.0.0.1 memory 1G &
server=$!
daemon=""
trap 'kill $daemon $server 2>/dev/null' EXIT
for i in $(seq 50); do nbdinfo --size nbd://127.0.0.1:10809/ >/dev/null 2>&1 && break; sleep 0.2; done

status_row() { # row phase pid iops: one csv line from /proc/PID/status and smaps_rollup
  # VmLck is the size of the locked mappings: under mlockall(MCL_ONFAULT) that is nearly all the address
  # space, resident or not. smaps_rollup's Locked is what of it is resident.
  awk -v row="$1" -v phase="$2" -v iops="$4" '
    { v[$1] = $2 }
    END { printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", row, phase, v["VmRSS:"], v["VmHWM:"], v["RssAnon:"], v["RssFile:"],
            v["VmLck:"], v["Locked:"], v["Threads:"], iops }' "/proc/$3/status" "/proc/$3/smaps_rollup" >> "$csv"
}

# What this JVM picks here (it decides how much the heap may grow: ergonomics follow CPUs and memory).
# shellcheck disable=SC2086 # jvm_opts is a list of options
"$java" $jvm_opts -XX:+PrintFlagsFinal -version 2>&1 \
  | awk '$2 ~ /^Use(Serial|G1|Parallel|Z|Shenandoah)GC$/ && $4 == "true" { print "gc " $2 }
         $2 ~ /^(InitialHeapSize|MaxHeapSize)$/ { printf "%s %.0f MiB\n", $2, $4 / 1048576 }
         /version/ { print }' > "$NBDGATE_RESULTS/jvm.txt"

# Baseline 1: `java -version`, its peak resident set by GNU time (a JVM that starts and exits).
# shellcheck disable=SC2086
if hwm=$(/usr/bin/time -f %M "$java" $jvm_opts -version 2>&1 >/dev/null | tail -n1) && [ -n "$hwm" ]; then
  echo "java -version,-,,$hwm,,,,,," >> "$csv"
fi
# Baseline 2: a JVM that loads one class and sleeps, read like the daemon (scripts/bench-memory compiled it).
# shellcheck disable=SC2086
"$java" $jvm_opts -cp "$NBDGATE_RESULTS/idle" Idle > /tmp/idle.out 2>&1 &
idle=$!
for i in $(seq 3000); do grep -q ready /tmp/idle.out 2>/dev/null && break; sleep 0.2; done
sleep 10
status_row "idle JVM" - "$idle" ""
kill "$idle"; wait "$idle" 2>/dev/null

for n in $(echo "$devices" | tr ',' ' '); do
  cfg=/tmp/nbdgate-$n.yaml
  {
    echo 'status: {listen: "off"}'
    echo 'devices:'
    for i in $(seq "$n"); do echo "  - {name: mem$i, uri: \"nbd://127.0.0.1:10809/\", queues: $queues}"; done
  } > "$cfg"
  log=/tmp/daemon-$n.log # copied to the results share when it stops: no writes over virtiofs while measuring
  bin/nbdgate daemon --config "$cfg" > "/tmp/devs-$n" 2> "$log" &
  daemon=$! # bin/nbdgate execs java: this is the JVM
  # Under TCG a JVM start alone takes 30-90 s; then each device attaches in turn.
  for i in $(seq 6000); do
    [ "$(wc -l < "/tmp/devs-$n")" -ge "$n" ] && break
    kill -0 "$daemon" 2>/dev/null || break
    sleep 0.2
  done
  if [ "$(wc -l < "/tmp/devs-$n")" -lt "$n" ]; then
    echo "bench-memory: the daemon did not attach $n device(s); its log:"; tail -n 20 "$log"
    kill "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; daemon=""
    cp "$log" "$NBDGATE_RESULTS/"
    continue
  fi
  sleep 10
  status_row "daemon $n device(s)" attached "$daemon" ""

  jobs=""
  for dev in $(cut -d' ' -f2 "/tmp/devs-$n"); do jobs="$jobs --name=$(basename "$dev") --filename=$dev"; done
  # Global options come before the first --name and apply to every job: one process per device, all at once.
  # shellcheck disable=SC2086
  t=$(fio --rw=randrw --bs=4k --iodepth=32 --ioengine=io_uring --direct=1 --allow_file_create=0 \
        --runtime="$runtime" --time_based --group_reporting --output-format=terse --terse-version=3 $jobs \
        2>/dev/null </dev/null)
  # terse v3: field 8 = read IOPS, 49 = write IOPS (summed over the jobs by --group_reporting)
  iops=$(echo "$t" | awk -F';' '{ printf "%.0f", $8 + $49 }')
  status_row "daemon $n device(s)" after-fio "$daemon" "$iops"
  # Where the resident set is: the 40 largest mappings by Rss (kB: Rss, Anonymous, Locked, name), and the
  # JVM's own accounting when NBDGATE_JAVA_OPTS turned on -XX:NativeMemoryTracking.
  awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6) }
       /^Rss:/ { rss[name] += $2 } /^Anonymous:/ { anon[name] += $2 } /^Locked:/ { lck[name] += $2 }
       END { for (k in rss) printf "%8d %8d %8d  %s\n", rss[k], anon[k], lck[k], k }' "/proc/$daemon/smaps" \
    | sort -rn | head -n 40 > "$NBDGATE_RESULTS/smaps-$n.txt"
  case "${NBDGATE_JAVA_OPTS:-}" in
    *NativeMemoryTracking*) "$JAVA_HOME/bin/jcmd" "$daemon" VM.native_memory summary > "$NBDGATE_RESULTS/nmt-$n.txt" 2>&1 ;;
  esac

  kill -TERM "$daemon"
  for i in $(seq 600); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$daemon" 2>/dev/null && { echo "bench-memory: the daemon with $n device(s) did not stop in 120 s"; kill -9 "$daemon"; }
  wait "$daemon" 2>/dev/null; daemon=""
  cp "$log" "$NBDGATE_RESULTS/"
done
exit 0
