#!/usr/bin/env bash
# Loopback TLS pull benchmark: one file tmpfs → tmpfs, the cargoport transfer engine vs `curl --http2`, both
# downloading from the same nginx (HTTP/2, TLS, 2 workers) in the same run, alternating, plus iperf3's
# single-stream raw TCP rate on loopback for scale. Prints median and best rates, CPU seconds per GiB
# (whole process: user + system) and the ratios.
#
#   bench/transfer-loopback.sh [size_mib=2048] [runs=3] [engine options for bench/pull-once.ts…]
#   e.g. bench/transfer-loopback.sh 2048 5 --connections 1 --streams 1
#   CHECKSUM_ALG=adler32 bench/transfer-loopback.sh …   (the engine verifies a given checksum while it streams)
# Needs: nginx, curl, iperf3, openssl, a built tree (npx tsc -p tsconfig.json).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MIB=${1:-2048}
RUNS=${2:-3}
shift $(( $# >= 2 ? 2 : $# )) || true
ENGINE_OPTS=("$@")
OUT=$ROOT/bench/out/loopback
PORT=${PORT:-18443}
IPERF_PORT=${IPERF_PORT:-18520}
source "$ROOT/bench/lib/bench-env.sh"
bench_setup
start_nginx
URL=https://127.0.0.1:$PORT$URL_PATH
# CHECKSUM_ALG=adler32|crc32c|md5|sha256: the engine verifies the file's value (computed here beforehand) while it
# streams, as for a Rucio/FTS transfer that carries a checksum; nginx itself sends none.
if [ -n "${CHECKSUM_ALG:-}" ]; then
  VALUE=$(node --input-type=module -e "import { createChecksummer } from '$ROOT/dist/services/checksum/checksummer.js'; import { createReadStream } from 'node:fs'; const s = createChecksummer('$CHECKSUM_ALG'); for await (const c of createReadStream('$SHM/src/file.bin', { highWaterMark: 1 << 20 })) s.update(c); console.log(s.digestHex());")
  ENGINE_OPTS+=(--checksum "$CHECKSUM_ALG:$VALUE")
fi

iperf3 -s -1 -p "$IPERF_PORT" >/dev/null 2>&1 &
sleep 0.3
IPERF_BPS=$(iperf3 -c 127.0.0.1 -p "$IPERF_PORT" -t 5 -J | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).end.sum_received.bits_per_second))')
IPERF_MBS=$(node -e "console.log(($IPERF_BPS/8/1e6).toFixed(1))")

echo "file: ${SIZE_MIB} MiB on tmpfs, nginx $(nginx -v 2>&1 | cut -d/ -f2) h2+TLS 2 workers, $(nproc) cores, node $(node -v), engine opts: ${ENGINE_OPTS[*]:-(defaults)}"
echo "iperf3 single-stream TCP loopback: ${IPERF_MBS} MB/s"
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
summarize "$BYTES" curl "${CT[*]}" "${CC[*]}" "${ET[*]}" "${EC[*]}" "$IPERF_MBS" iperf3
node -e 'const a=process.argv[2].trim().split(/\s+/).map(Number).sort((x,y)=>x-y);const m=a[Math.floor(a.length/2)];console.log(`engine in-process transfer CPU (excl. node start-up): ${(m/(Number(process.argv[1])/2**30)).toFixed(2)} cpu-s/GiB`)' "$BYTES" "${EI[*]}"
