#!/usr/bin/env bash
# usage: import.sh BINARY FILE  -> seconds from POST to available (one import, fresh data dir).
# FILE is fetched from a file server on 127.0.0.1:18182 (e.g. `python3 -m http.server 18182 --bind 127.0.0.1` in its folder).
set -euo pipefail
bin=$1; file=$2; port=18181
d=$(mktemp -d); cd "$d"
"$bin" serve --listen 127.0.0.1:$port --import-allow-private-networks --import-workers 1 > out.txt 2> err.txt &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$d"' EXIT
for _ in $(seq 100); do grep -q dop_v1_ out.txt 2>/dev/null && break; sleep 0.1; done
tok=$(grep -o 'dop_v1_[0-9a-f]*' out.txt | head -1)
sleep 0.3
start=$(date +%s.%N)
id=$(curl -s -X POST -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
  -d "{\"name\":\"p\",\"url\":\"http://127.0.0.1:18182/$file\",\"region\":\"nyc3\"}" http://127.0.0.1:$port/v2/images | python3 -c 'import json,sys; print(json.load(sys.stdin)["image"]["id"])')
while :; do
  st=$(curl -s -H "Authorization: Bearer $tok" http://127.0.0.1:$port/v2/images/$id | python3 -c 'import json,sys; i=json.load(sys.stdin)["image"]; print(i["status"], i["error_message"])')
  case "$st" in available*|deleted*) break;; esac
  sleep 0.05
done
end=$(date +%s.%N)
echo "$st $(python3 -c "print(round($end-$start,2))") s"
