// Measurement instrument, not product code: the cheapest HTTP/2 download Node can do, for bench/raw-h2-floor.mjs.
// One GET over tls.connect({ onread }) (decrypted bytes land in one reused 256 KiB buffer, no JS Buffer per read
// or per DATA frame), DATA payloads copied into recycled 1 MiB staging buffers, native adler32 per staging buffer,
// positional writes through the thread pool. Only what nginx sends for one GET is handled: the response status is
// read from its first HPACK byte (static-table :status 200/206), padding is ignored, there is no error recovery.
//
//   CA=cert.pem node bench/lib/raw-h2-pull.mjs <port> <path> <outfile>   → JSON {bytes, adler32, reads, ...}
// Knobs: STAGE (staging buffer bytes), MAXW (writes in flight), SYNCW=1 (write on the main thread).
import tls from 'node:tls';
import fs from 'node:fs';
import { adler32Update } from '../../dist/services/checksum/adler32.js';
const [port, path, out] = process.argv.slice(2);
const ca = fs.readFileSync(process.env.CA);
const STAGE = Number(process.env.STAGE ?? 1 << 20), NSTAGE = 4, WIN = 16 << 20;
const free = Array.from({ length: NSTAGE }, () => Buffer.allocUnsafe(STAGE));
let stage = free.pop(), fill = 0, pos = 0, writing = 0, paused = false, ended = false, sum = 1, consumed = 0, connConsumed = 0;
const fd = fs.openSync(out, 'w');
const readBuf = Buffer.allocUnsafe(256 * 1024);
// frame parser state
const hdr = Buffer.alloc(9); let hdrFill = 0, len = 0, type = 0, flags = 0, sid = 0, remaining = 0, pad = 0, padLeft = 0;
let ctl = Buffer.alloc(0), ctlFill = 0;
function frame(type, flags, sid, payload) {
  const b = Buffer.alloc(9 + payload.length); b.writeUIntBE(payload.length, 0, 3); b[3] = type; b[4] = flags; b.writeUInt32BE(sid, 5); payload.copy(b, 9); return b;
}
function u32(n) { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; }
const MAXW = Number(process.env.MAXW ?? 99); const queue = [];
function issue(buf, n, at) {
  writing++;
  fs.write(fd, buf, 0, n, at, (err) => {
    if (err) throw err;
    writing--; free.push(buf);
    if (queue.length) { const q = queue.shift(); issue(q[0], q[1], q[2]); }
    if (!stage) { stage = free.pop(); }
    if (paused && free.length > 0) { paused = false; sock.resume(); }
    if (ended && writing === 0 && fill === 0 && queue.length === 0) done();
  });
}
function flush(final) {
  if (fill === 0) { if (final && writing === 0 && queue.length === 0) done(); return; }
  const buf = stage, n = fill, at = pos; pos += n; fill = 0;
  sum = adler32Update(sum, buf, 0, n);
  stage = free.pop();
  if (process.env.SYNCW === '1') { fs.writeSync(fd, buf, 0, n, at); free.push(buf); stage = stage ?? free.pop(); if (final) done(); return; }
  if (writing < MAXW) issue(buf, n, at); else queue.push([buf, n, at]);
  if (!stage) { paused = true; sock.pause(); }
}
function done() { fs.closeSync(fd); console.log(JSON.stringify({ bytes: pos, adler32: sum.toString(16), reads, avg: readBytes / reads, cpu: process.cpuUsage() })); sock.end(); process.exit(0); }
function onData(src, off, n) {
  // copy into staging, flushing as buffers fill
  while (n > 0) {
    if (!stage) { stage = Buffer.allocUnsafe(STAGE); }
    const k = Math.min(n, STAGE - fill);
    src.copy(stage, fill, off, off + k); fill += k; off += k; n -= k;
    if (fill === STAGE) flush(false);
  }
}
function onFrameEnd() {
  if (type === 0) { // DATA
    consumed += len; connConsumed += len;
    if (connConsumed >= WIN / 2) { sock.write(frame(8, 0, 0, u32(connConsumed))); connConsumed = 0; }
    if (consumed >= WIN / 2) { sock.write(frame(8, 0, sid, u32(consumed))); consumed = 0; }
    if (flags & 1) { ended = true; flush(true); }
  } else if (type === 1) { // HEADERS
    if (ctl[0] !== 0x88 && ctl[0] !== 0x8a) { console.error('status byte', ctl[0].toString(16)); process.exit(1); }
  } else if (type === 4) { if (!(flags & 1)) sock.write(frame(4, 1, 0, Buffer.alloc(0))); }
  else if (type === 6) { if (!(flags & 1)) sock.write(frame(6, 1, 0, ctl.subarray(0, 8))); }
  else if (type === 7 || type === 3) { console.error('goaway/rst'); process.exit(1); }
}
let reads = 0, readBytes = 0;
function onRead(n, buf) { reads++; readBytes += n;
  let i = 0;
  while (i < n) {
    if (hdrFill < 9) {
      const k = Math.min(9 - hdrFill, n - i); buf.copy(hdr, hdrFill, i, i + k); hdrFill += k; i += k;
      if (hdrFill < 9) break;
      len = hdr.readUIntBE(0, 3); type = hdr[3]; flags = hdr[4]; sid = hdr.readUInt32BE(5) & 0x7fffffff;
      remaining = len; pad = -1;
      if (type !== 0) { if (ctl.length < len) ctl = Buffer.alloc(len); ctlFill = 0; }
      if (len === 0) { hdrFill = 0; onFrameEnd(); continue; }
    }
    const k = Math.min(remaining, n - i);
    if (type === 0) {
      let s = i, e = i + k;
      if ((flags & 8) && pad < 0) { pad = buf[s]; s++; padLeft = pad; } // prototype: padding ignored except first byte
      const dataEnd = len - remaining + k > len - (flags & 8 ? pad : 0) ? e - ((len - remaining + k) - (len - (flags & 8 ? pad : 0))) : e;
      if (dataEnd > s) onData(buf, s, dataEnd - s);
    } else { buf.copy(ctl, ctlFill, i, i + k); ctlFill += k; }
    i += k; remaining -= k;
    if (remaining === 0) { hdrFill = 0; onFrameEnd(); }
  }
  return true;
}
const hpackStr = (s) => { const b = Buffer.from(s); return Buffer.concat([Buffer.from([b.length < 127 ? b.length : 127]), b]); };
const sock = tls.connect({ host: '127.0.0.1', port: Number(port), ca, servername: 'localhost', ALPNProtocols: ['h2'], onread: { buffer: readBuf, callback: onRead } }, () => {
  if (sock.alpnProtocol !== 'h2') { console.error('no h2'); process.exit(1); }
  const settings = Buffer.alloc(12); settings.writeUInt16BE(2, 0); settings.writeUInt32BE(0, 2); settings.writeUInt16BE(4, 6); settings.writeUInt32BE(WIN, 8);
  const block = Buffer.concat([Buffer.from([0x82, 0x87]), Buffer.from([0x04]), hpackStr(path), Buffer.from([0x01]), hpackStr('localhost')]);
  sock.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, settings), frame(8, 0, 0, u32(WIN - 65535)), frame(1, 5, 1, block)]));
});
sock.on('error', (e) => { console.error(e); process.exit(1); });
