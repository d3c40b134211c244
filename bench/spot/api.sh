#!/usr/bin/env bash
# usage: api.sh BINARY -> wrk req/s and p99 of a get by id and a list of 20 against a fresh tidepool (run under taskset to pin).
set -euo pipefail
bin=$1; port=18183
d=$(mktemp -d); cd "$d"
"$bin" serve --listen 127.0.0.1:$port --rate-limit-per-hour 0 --rate-limit-per-minute 0 > out.txt 2> err.txt &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$d"' EXIT
for _ in $(seq 100); do grep -q dop_v1_ out.txt 2>/dev/null && break; sleep 0.1; done
tok=$(grep -o 'dop_v1_[0-9a-f]*' out.txt | head -1); sleep 0.3
wrk -t1 -c32 -d2s -H "Authorization: Bearer $tok" http://127.0.0.1:$port/v2/images/3 >/dev/null
for path in /v2/images/3 "/v2/images?per_page=20"; do
  wrk -t1 -c32 -d5s --latency -H "Authorization: Bearer $tok" "http://127.0.0.1:$port$path" | awk -v p="$path" '/Requests\/sec/{r=$2} / 99%/{l=$2} END{print p, r, "req/s p99", l}'
done
