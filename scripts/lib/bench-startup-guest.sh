# Runs inside the guest, started by `scripts/bench --startup`: the first seconds of a fresh attach. For each
# variant: the guest seconds from `nbdgate attach` to its device, then fio 4k random reads at QD32 for
# BENCH_RUNTIME seconds with the IOPS of every second logged, then detach. Variants: nbdgate with the serving
# AOT cache it ships (bin/nbdgate gives it to attach), nbdgate without it (the same jar under another name,
# BENCH_NOCACHE_JAR, which the launcher gives no cache: the JDK's own class archive only), and nbd.ko as the
# reference that has nothing to start. Writes $NBDGATE_RESULTS/startup.csv: variant,second,iops and
# attach.csv: variant,seconds.
set -u
runtime=${BENCH_RUNTIME:-10} conns=${BENCH_CONNS:-2} size=${BENCH_SIZE:-1G}
out=$NBDGATE_RESULTS
: > "$out/startup.csv"; : > "$out/attach.csv"
nbdkit -f -p 10809 -i 127.0.0.1 memory "$size" &
server=$!
attach=
trap 'kill $attach $server 2>/dev/null; nbd-client -d /dev/nbd0 >/dev/null 2>&1' EXIT
for i in $(seq 50); do nbdinfo --size nbd://127.0.0.1:10809/bench >/dev/null 2>&1 && break; sleep 0.2; done

uptime_s() { read -r up idle < /proc/uptime; echo "$up"; }

# fio for $runtime seconds from the device's first moment, its IOPS per second into startup.csv.
first_seconds() { # variant device
  rm -f /tmp/startup_iops.*.log
  fio --name=s --filename="$2" --allow_file_create=0 --rw=randread --bs=4k --iodepth=32 --ioengine=io_uring \
      --direct=1 --runtime="$runtime" --time_based --size="$size" --write_iops_log=/tmp/startup \
      --log_avg_msec=1000 >/dev/null 2>&1 </dev/null
  awk -F, -v v="$1" '{ printf "%s,%d,%d\n", v, NR, $2 }' /tmp/startup_iops.*.log >> "$out/startup.csv"
}

nbd-client 127.0.0.1 10809 /dev/nbd0 -N bench -C "$conns" -b 4096 >/tmp/nbd-client.log 2>&1 \
  || { echo "bench: nbd-client failed:"; cat /tmp/nbd-client.log; exit 1; }
echo "nbd.ko,0" >> "$out/attach.csv"
first_seconds nbd.ko /dev/nbd0
nbd-client -d /dev/nbd0 >/dev/null 2>&1

n=0
for v in "nbdgate-aot-cache=" "nbdgate-no-cache=$BENCH_NOCACHE_JAR"; do
  n=$((n + 1)) name=${v%%=*} jar=${v#*=}
  start=$(uptime_s)
  NBDGATE_JAR=$jar bin/nbdgate attach nbd://127.0.0.1:10809/bench --name "startup-$n" --queues "$conns" \
      > /tmp/dev 2> "/tmp/attach-$n.log" &
  attach=$!
  for i in $(seq 6000); do [ -s /tmp/dev ] && break; kill -0 "$attach" 2>/dev/null || break; sleep 0.1; done
  dev=$(cat /tmp/dev); : > /tmp/dev
  if [ ! -b "$dev" ]; then echo "bench: $name did not attach:"; cat "/tmp/attach-$n.log"; continue; fi
  echo "$name,$(awk -v a="$start" -v b="$(uptime_s)" 'BEGIN { printf "%.1f", b - a }')" >> "$out/attach.csv"
  first_seconds "$name" "$dev"
  kill "$attach"; wait "$attach" 2>/dev/null; attach=
done
exit 0
