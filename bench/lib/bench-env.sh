# Shared pieces of the transfer benchmarks (sourced, not run): a self-signed certificate, a tmpfs work area
# with a random source file, nginx serving it over HTTP/2 + TLS with 2 workers, and a timing wrapper that
# reports wall seconds and the process's CPU seconds (user + system, children included).
# Callers set: ROOT, OUT, SIZE_MIB, PORT. Provides: SHM, URL_PATH, BYTES, start_nginx, measure, summarize.

bench_setup() {
  SHM=$(mktemp -d /dev/shm/cargoport-bench.XXXXXX)
  mkdir -p "$OUT" "$SHM/src" "$SHM/dst"
  trap bench_cleanup EXIT
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$OUT/key.pem" -out "$OUT/cert.pem" \
    -days 2 -subj /CN=localhost -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
    -addext 'basicConstraints=critical,CA:TRUE' 2>/dev/null
  head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$SHM/src/file.bin"
  chmod -R a+rX "$SHM" # nginx workers run unprivileged
  BYTES=$((SIZE_MIB * 1024 * 1024))
  URL_PATH=/file.bin
}

bench_cleanup() {
  [[ -f $OUT/nginx.pid ]] && kill "$(cat "$OUT/nginx.pid")" 2>/dev/null || true
  local p; for p in "${BENCH_PIDS[@]:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null || true; done
  rm -rf "$SHM"
}

start_nginx() {
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
}

# measure <command…> → prints "wall_seconds cpu_seconds"; the command's stdout is kept in $OUT/last-stdout
measure() {
  local tf; tf=$(mktemp)
  /usr/bin/time -f '%e %U %S' -o "$tf" "$@" >"$OUT/last-stdout"
  awk '{ printf "%s %.3f\n", $1, $2 + $3 }' "$tf"
  rm -f "$tf"
}

# CPU seconds the engine itself reported for the transfer (excludes node start-up and module loading, which a
# long-running worker pays once), from bench/pull-once's JSON line.
engine_transfer_cpu() {
  node -e 'const j=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(j.transferCpuSeconds.toFixed(3))' "$OUT/last-stdout"
}

# summarize <bytes> <peer label> "<peer secs…>" "<peer cpu…>" "<engine secs…>" "<engine cpu…>" [<reference MB/s> <reference label>]
summarize() {
  node - "$@" <<'JS'
const [bytes, label, pt, pc, et, ec, ref, refLabel] = process.argv.slice(2);
const nums = (s) => s.trim().split(/\s+/).map(Number);
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const gib = Number(bytes) / 2 ** 30;
const rate = (t) => Number(bytes) / t / 1e6;
const row = (name, t, c) => {
  const T = nums(t), C = nums(c);
  return { name, med: rate(median(T)), best: rate(Math.min(...T)), cpu: median(C) / gib };
};
const p = row(label, pt, pc), e = row('engine', et, ec);
for (const r of [p, e]) console.log(`${r.name.padEnd(8)} median ${r.med.toFixed(0)} MB/s, best ${r.best.toFixed(0)} MB/s, ${r.cpu.toFixed(2)} cpu-s/GiB`);
let line = `RATIO engine/${label}: rate median ${(e.med / p.med).toFixed(2)}, best ${(e.best / p.best).toFixed(2)}; cpu-s/GiB ${(e.cpu / p.cpu).toFixed(2)}`;
if (ref) line += `; engine/${refLabel} ${(e.med / Number(ref)).toFixed(2)}, ${label}/${refLabel} ${(p.med / Number(ref)).toFixed(2)}`;
console.log(line);
JS
}
