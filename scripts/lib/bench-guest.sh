# Runs inside the guest (or natively on a ublk kernel), started by scripts/bench.
# Writes $NBDGATE_RESULTS/bench.csv: contender,workload,value,unit
set -u
runtime=${BENCH_RUNTIME:-15} ramp=${BENCH_RAMP:-10} warmup=${BENCH_WARMUP:-30} conns=${BENCH_CONNS:-2} size=${BENCH_SIZE:-1G}
csv="$NBDGATE_RESULTS/bench.csv"; : > "$csv"
nbdkit -f -p 10809 -i 127.0.0.1 memory "$size" &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for i in $(seq 50); do nbdinfo --size nbd://127.0.0.1:10809/bench >/dev/null 2>&1 && break; sleep 0.2; done

measure() { # contender device
  contender=$1 dev=$2
  # Warm-up, unmeasured, identical for every contender: a JVM compiles its data path in the first
  # tens of seconds under TCG; nbd.ko's caches and the server warm up too.
  fio --name=warm --filename="$dev" --rw=randrw --bs=4k --iodepth=32 --ioengine=io_uring --direct=1 \
      --runtime="$warmup" --time_based --size="$size" >/dev/null 2>&1
  for w in "randread 4k 32 4k-randread-qd32 IOPS" "randwrite 4k 32 4k-randwrite-qd32 IOPS" \
           "read 1M 8 1M-read-qd8 MiB/s" "write 1M 8 1M-write-qd8 MiB/s"; do
    set -- $w
    t=$(fio --name=b --filename="$dev" --rw=$1 --bs=$2 --iodepth=$3 --ioengine=io_uring --direct=1 \
          --runtime="$runtime" --ramp_time="$ramp" --time_based --size="$size" --numjobs=1 --group_reporting \
          --output-format=terse --terse-version=3 2>/dev/null)
    # terse v3: 7/8 = read bandwidth KiB/s / IOPS, 48/49 = write bandwidth KiB/s / IOPS
    case "$1" in
      randread) v=$(echo "$t" | cut -d';' -f8) ;;
      randwrite) v=$(echo "$t" | cut -d';' -f49) ;;
      read) v=$(echo "$t" | awk -F';' '{printf "%.1f", $7/1024}') ;;
      write) v=$(echo "$t" | awk -F';' '{printf "%.1f", $48/1024}') ;;
    esac
    echo "$contender,$4,${v:-0},$5" >> "$csv"
    echo "  $contender $4: $v $5"
  done
}

echo "== nbd.ko (nbd-client, $conns connections)"
nbd-client 127.0.0.1 10809 /dev/nbd0 -N bench -C "$conns" -b 4096 >/dev/null 2>&1 || { echo "bench: nbd-client failed"; exit 1; }
measure nbd.ko /dev/nbd0
nbd-client -d /dev/nbd0 >/dev/null 2>&1

for mode in zero-copy user-copy copy; do
  echo "== nbdgate $mode ($conns queues/connections)"
  rm -f /tmp/dev
  bin/nbdgate attach nbd://127.0.0.1:10809/bench --buffer-mode "$mode" --queues "$conns" > /tmp/dev 2>/tmp/attach.log &
  pid=$!
  for i in $(seq 600); do [ -s /tmp/dev ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.2; done
  dev=$(cat /tmp/dev 2>/dev/null)
  if [ ! -b "$dev" ]; then
    echo "bench: attach ($mode) failed; its row stays empty:"; cat /tmp/attach.log
    kill $pid 2>/dev/null; wait $pid 2>/dev/null
    continue
  fi
  measure "nbdgate-$mode" "$dev"
  kill $pid; wait $pid 2>/dev/null
done
exit 0
