#!/usr/bin/env bash
# Emulated WAN pull benchmark: nginx (HTTP/2, TLS) behind wanproxy (user-space delay line: RTT and a per-
# connection, per-direction rate cap), one file tmpfs → tmpfs, the engine vs single-stream `curl --http2` in the
# same run. The proxy's capacity for one connection is its -rate; the engine uses ONE connection here (streams
# are HTTP/2 streams inside it), so "fraction of capacity" is engine MB/s ÷ rate.
#
#   bench/transfer-wan.sh [size_mib=2048] [runs=2] [rtt=110ms] [rate_MBps=125] [engine options…]
# Needs: nginx, curl, openssl, Go (to build the wanproxy delay line, ../shared/tools/wanproxy beside the repository
# or $WANPROXY_SRC, into bench/out), a built tree.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MIB=${1:-2048}
RUNS=${2:-2}
RTT=${3:-110ms}
RATE=${4:-125}
shift $(( $# >= 4 ? 4 : $# )) || true
ENGINE_OPTS=("$@")
OUT=$ROOT/bench/out/wan
PORT=${PORT:-18444}
PROXY_PORT=${PROXY_PORT:-18900}
source "$ROOT/bench/lib/bench-env.sh"
WANPROXY=$ROOT/bench/out/wanproxy
if [[ ! -x $WANPROXY ]]; then
  (cd "${WANPROXY_SRC:-$ROOT/../shared/tools/wanproxy}" && GOCACHE=${GOCACHE:-/tmp/gocache} go build -o "$WANPROXY" .)
fi
bench_setup
start_nginx
"$WANPROXY" -listen 127.0.0.1:$PROXY_PORT -upstream 127.0.0.1:$PORT -rtt "$RTT" -rate "$RATE" 2>"$OUT/wanproxy.log" &
BENCH_PIDS=($!)
sleep 0.3
URL=https://127.0.0.1:$PROXY_PORT$URL_PATH

# What one TCP connection actually gets through the proxy (its pacing loses time to sleep overshoot, so the
# real capacity is below -rate): iperf3, single stream, through a second proxy instance with the same settings.
IPERF_PORT=${IPERF_PORT:-18521}
IPERF_PROXY_PORT=${IPERF_PROXY_PORT:-18901}
iperf3 -s -1 -p "$IPERF_PORT" >/dev/null 2>&1 &
BENCH_PIDS+=($!)
"$WANPROXY" -listen 127.0.0.1:$IPERF_PROXY_PORT -upstream 127.0.0.1:$IPERF_PORT -rtt "$RTT" -rate "$RATE" 2>/dev/null &
BENCH_PIDS+=($!)
sleep 0.3
IPERF_BPS=$(iperf3 -c 127.0.0.1 -p "$IPERF_PROXY_PORT" -t 10 -J | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).end.sum_received.bits_per_second))')
PROXY_MBS=$(node -e "console.log(($IPERF_BPS/8/1e6).toFixed(1))")

echo "file: ${SIZE_MIB} MiB on tmpfs, via wanproxy rtt=$RTT rate=${RATE} MB/s per connection, nginx h2+TLS, node $(node -v), engine opts: ${ENGINE_OPTS[*]:-(defaults)}"
echo "iperf3 single TCP stream through the proxy: ${PROXY_MBS} MB/s (nominal -rate ${RATE} MB/s)"
CT=() CC=() ET=() EC=() EI=()
for i in $(seq 1 "$RUNS"); do
  rm -f "$SHM/dst/"*
  read -r t c < <(measure curl --http2 -s --cacert "$OUT/cert.pem" -o "$SHM/dst/curl.bin" "$URL")
  [[ $(stat -c %s "$SHM/dst/curl.bin") == "$BYTES" ]] || { echo "curl: short file"; exit 1; }
  CT+=("$t"); CC+=("$c")
  rm -f "$SHM/dst/"*
  read -r t c < <(measure node "$ROOT/dist/bench/pull-once.js" "$URL" "file://$SHM/dst/engine.bin" --ca "$OUT/cert.pem" "${ENGINE_OPTS[@]}")
  cmp -s "$SHM/src/file.bin" "$SHM/dst/engine.bin" || { echo "engine: content differs"; exit 1; }
  ET+=("$t"); EC+=("$c"); EI+=("$(engine_transfer_cpu)")
  echo "run $i: curl ${CT[-1]} s ${CC[-1]} cpu-s | engine ${ET[-1]} s ${EC[-1]} cpu-s (in-process, excl. start-up: ${EI[-1]})"
done
summarize "$BYTES" curl "${CT[*]}" "${CC[*]}" "${ET[*]}" "${EC[*]}" "$PROXY_MBS" proxy-tcp
echo "(nominal proxy -rate ${RATE} MB/s; ratios above are against the measured single-TCP-stream capacity ${PROXY_MBS} MB/s)"
node -e 'const a=process.argv[2].trim().split(/\s+/).map(Number).sort((x,y)=>x-y);const m=a[Math.floor(a.length/2)];console.log(`engine in-process transfer CPU (excl. node start-up): ${(m/(Number(process.argv[1])/2**30)).toFixed(2)} cpu-s/GiB`)' "$BYTES" "${EI[*]}"
