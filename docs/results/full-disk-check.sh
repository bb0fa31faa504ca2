#!/usr/bin/env bash
# Full-disk check of the service: an index folder on a 256 KiB tmpfs, filled up.
set -u
# Needs root (it mounts a 256 KiB tmpfs at /tmp/fullfs), a model folder and a small index
# folder: MODEL=runs/clip/final INDEX=some-index IMAGE=a.png docs/results/full-disk-check.sh
X=${X:-target/release/xtask}
mkdir -p /tmp/fullfs && (mountpoint -q /tmp/fullfs || mount -t tmpfs -o size=256k tmpfs /tmp/fullfs)
MODEL=${MODEL:?a model folder}
INDEX=${INDEX:?an index folder}
IMAGE=${IMAGE:?an image}
rm -rf /tmp/fullfs/*
cp -r "$INDEX" /tmp/fullfs/index
avail=$(df --output=avail -B1 /tmp/fullfs | tail -1)
dd if=/dev/zero of=/tmp/fullfs/filler bs=1024 count=$(( avail / 1024 - 6 )) 2>/dev/null
df -B1 /tmp/fullfs | tail -1
$X serve --index /tmp/fullfs/index --model $MODEL --addr 127.0.0.1:18555 2>/tmp/fullfs-serve.err &
pid=$!
for i in $(seq 100); do curl -s localhost:18555/health >/dev/null && break; sleep 0.1; done
acked=0; first_fail=""
for i in $(seq 60); do
  out=$(curl -s -w ' %{http_code}' -F image=@"$IMAGE" -F "metadata={\"n\": $i}" localhost:18555/index)
  code=${out##* }
  if [ "$code" = 200 ]; then acked=$((acked+1)); else [ -z "$first_fail" ] && first_fail="$i: $out"; fi
done
echo "acknowledged $acked; first failure: $first_fail"
echo "health while full: $(curl -s localhost:18555/health)"; rm /tmp/fullfs/filler; echo "after freeing space: $(curl -s -w " %{http_code}" -F image=@"$IMAGE" -F "metadata={\"n\": 99}" localhost:18555/index)"
kill -9 $pid; wait $pid 2>/dev/null
true
$X serve --index /tmp/fullfs/index --model $MODEL --addr 127.0.0.1:18555 2>/tmp/fullfs-serve2.err &
pid=$!
for i in $(seq 100); do curl -s localhost:18555/health >/dev/null && break; sleep 0.1; done
echo "after restart: $(curl -s localhost:18555/health)"
tail -3 /tmp/fullfs-serve2.err
kill -9 $pid; wait $pid 2>/dev/null
