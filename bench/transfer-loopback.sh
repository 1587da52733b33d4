#!/usr/bin/env bash
# Loopback TLS pull benchmark: one file tmpfs → tmpfs, the cargoport transfer engine vs `curl --http2`, both
# downloading from the same nginx (HTTP/2, TLS, 2 workers) in the same run, alternating, plus iperf3's
# single-stream raw TCP rate on loopback for scale. Prints rates, CPU seconds per GiB (whole process: user+sys)
# and the ratios.
#
#   bench/transfer-loopback.sh [size_mib=2048] [runs=3] [engine options passed to bench/pull-once.ts…]
#   e.g. bench/transfer-loopback.sh 2048 3 --connections 1 --streams 4
# Needs: nginx, curl, iperf3, openssl, a built tree (npx tsc -p tsconfig.json).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MIB=${1:-2048}
RUNS=${2:-3}
shift $(( $# >= 2 ? 2 : $# )) || true
ENGINE_OPTS=("$@")
OUT=$ROOT/bench/out/loopback
SHM=$(mktemp -d /dev/shm/cargoport-bench.XXXXXX)
PORT=${PORT:-18443}
IPERF_PORT=${IPERF_PORT:-18520}
mkdir -p "$OUT" "$SHM/src" "$SHM/dst"
cleanup() {
  [[ -f $OUT/nginx.pid ]] && kill "$(cat "$OUT/nginx.pid")" 2>/dev/null || true
  rm -rf "$SHM"
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$OUT/key.pem" -out "$OUT/cert.pem" \
  -days 2 -subj /CN=localhost -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
  -addext 'basicConstraints=critical,CA:TRUE' 2>/dev/null
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$SHM/src/file.bin"
chmod -R a+rX "$SHM"  # nginx workers run unprivileged

cat > "$OUT/nginx.conf" <<NGINX
worker_processes 2;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile off;
  server {
    listen 127.0.0.1:$PORT ssl http2;
    ssl_certificate $OUT/cert.pem;
    ssl_certificate_key $OUT/key.pem;
    root $SHM/src;
    location / { }
  }
}
NGINX
nginx -c "$OUT/nginx.conf" -p "$OUT"
sleep 0.3
URL=https://127.0.0.1:$PORT/file.bin
BYTES=$((SIZE_MIB * 1024 * 1024))

# iperf3 single stream, raw TCP on loopback, 5 s.
iperf3 -s -1 -p "$IPERF_PORT" >/dev/null 2>&1 &
sleep 0.3
IPERF_BPS=$(iperf3 -c 127.0.0.1 -p "$IPERF_PORT" -t 5 -J | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).end.sum_received.bits_per_second))')
IPERF_MBS=$(node -e "console.log(($IPERF_BPS/8/1e6).toFixed(1))")

measure() { # label, command… → "seconds cpu_seconds"
  local tf; tf=$(mktemp)
  /usr/bin/time -f '%e %U %S' -o "$tf" "$@" >/dev/null
  awk '{ printf "%s %.3f\n", $1, $2 + $3 }' "$tf"
  rm -f "$tf"
}

echo "file: ${SIZE_MIB} MiB on tmpfs, nginx $(nginx -v 2>&1 | cut -d/ -f2) h2+TLS 2 workers, $(nproc) cores, $(node -v)"
echo "iperf3 single-stream TCP loopback: ${IPERF_MBS} MB/s"
declare -a CURL_T CURL_C ENG_T ENG_C
for i in $(seq 1 "$RUNS"); do
  rm -f "$SHM/dst/"*
  read -r t c < <(measure curl --http2 -s --cacert "$OUT/cert.pem" -o "$SHM/dst/curl.bin" "$URL")
  [[ $(stat -c %s "$SHM/dst/curl.bin") == "$BYTES" ]] || { echo "curl: short file"; exit 1; }
  CURL_T+=("$t"); CURL_C+=("$c")
  rm -f "$SHM/dst/"*
  read -r t c < <(measure node "$ROOT/dist/bench/pull-once.js" "$URL" "file://$SHM/dst/engine.bin" --ca "$OUT/cert.pem" "${ENGINE_OPTS[@]}")
  [[ $(stat -c %s "$SHM/dst/engine.bin") == "$BYTES" ]] || { echo "engine: short file"; exit 1; }
  cmp -s "$SHM/src/file.bin" "$SHM/dst/engine.bin" || { echo "engine: content differs"; exit 1; }
  ENG_T+=("$t"); ENG_C+=("$c")
  echo "run $i: curl ${CURL_T[-1]} s ${CURL_C[-1]} cpu-s | engine ${ENG_T[-1]} s ${ENG_C[-1]} cpu-s"
done

node - "$BYTES" "$IPERF_MBS" "${CURL_T[*]}" "${CURL_C[*]}" "${ENG_T[*]}" "${ENG_C[*]}" <<'JS'
const [bytes, iperf, ct, cc, et, ec] = process.argv.slice(2);
const nums = (s) => s.split(' ').map(Number);
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const gib = Number(bytes) / 2 ** 30;
const curlT = median(nums(ct)), engT = median(nums(et));
const curlCpu = median(nums(cc)) / gib, engCpu = median(nums(ec)) / gib;
const curlRate = Number(bytes) / curlT / 1e6, engRate = Number(bytes) / engT / 1e6;
console.log(`median of runs: curl ${curlRate.toFixed(0)} MB/s, ${curlCpu.toFixed(2)} cpu-s/GiB | engine ${engRate.toFixed(0)} MB/s, ${engCpu.toFixed(2)} cpu-s/GiB`);
console.log(`RATIO engine/curl rate: ${(engRate / curlRate).toFixed(2)}   cpu-s/GiB engine/curl: ${(engCpu / curlCpu).toFixed(2)}   engine/iperf3: ${(engRate / Number(iperf)).toFixed(2)}   curl/iperf3: ${(curlRate / Number(iperf)).toFixed(2)}`);
JS
