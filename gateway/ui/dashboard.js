// cargoport operator dashboard: plain ES module, no build step, no request to any host but the gateway.
// Reads the REST API (status, jobs, files, limits) once a second and follows /api/v1/events for state changes;
// admin buttons act through the same REST operations (and rights) as the CLI, after a confirmation.
const API = '/api/v1';
const POLL_MS = 1000;
const HISTORY_SEC = 3600;
const COLORS = ['#1f6feb', '#d29922', '#8250df', '#1b7f3b', '#cf222e', '#0a7d8c', '#9a6700', '#6e7781'];

const $ = (id) => document.getElementById(id);
const tokenInput = $('token');
tokenInput.value = sessionStorage.getItem('cargoport.token') ?? '';
tokenInput.addEventListener('change', () => {
  sessionStorage.setItem('cargoport.token', tokenInput.value.trim());
  restartEvents();
  refresh();
});

function headers(extra = {}) {
  const h = { accept: 'application/json', ...extra };
  const t = tokenInput.value.trim();
  if (t) h.authorization = `Bearer ${t}`;
  return h;
}

async function api(method, path, body) {
  const res = await fetch(API + path, {
    method, headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : undefined;
  if (!res.ok) throw new Error(data?.title ? `${data.title}${data.detail ? ': ' + data.detail : ''}` : `HTTP ${res.status}`);
  return data;
}

// ---- formatting (decimal units, as network rates are quoted) ----
const UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
function bytes(n) {
  if (!Number.isFinite(n) || n < 0) return '?';
  let i = 0;
  while (n >= 1000 && i < UNITS.length - 1) { n /= 1000; i++; }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${UNITS[i]}`;
}
const rate = (n) => `${bytes(n)}/s`;
function eta(sec) {
  if (sec === undefined || !Number.isFinite(sec)) return '--:--';
  const s = Math.round(sec), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return `${h ? h + ':' : ''}${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}`;
}
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else if (k === 'onclick') e.addEventListener('click', v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? '')));
  return e;
}
function progressBar(fraction) {
  const f = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
  return el('span', {}, el('span', { class: 'bar' }, Object.assign(el('span'), { style: `width:${(f * 100).toFixed(1)}%` })), ` ${(f * 100).toFixed(1)}%`);
}
function fill(tableId, rows) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren(...rows);
}
const terminal = (c) => (c.FINISHED ?? 0) + (c.FAILED ?? 0) + (c.CANCELED ?? 0);
const jobFraction = (j) => (j.bytesTotal > 0 ? j.bytesDone / j.bytesTotal : j.files > 0 ? terminal(j.counts) / j.files : 0);

// ---- throughput history and plot ----
const history = []; // {t, total, links: {link: rate}}
const linkColor = new Map();
function colorOf(link) {
  if (!linkColor.has(link)) linkColor.set(link, COLORS[(linkColor.size + 1) % COLORS.length]);
  return linkColor.get(link);
}
// The plots follow /events' throughput samples; the status poll fills in only while that stream is down.
let lastThroughputEvent = 0;
function record(status, fromPoll = false) {
  if (fromPoll && Date.now() - lastThroughputEvent < 3000) return;
  const now = Date.now();
  history.push({ t: now, total: status.transfers.rateBytesPerSec, links: status.transfers.links ?? {} });
  while (history.length && history[0].t < now - HISTORY_SEC * 1000) history.shift();
}
function drawPlot() {
  const c = $('plot');
  const w = c.width = c.clientWidth || 1100, h = c.height = c.clientHeight || 220;
  const g = c.getContext('2d');
  g.clearRect(0, 0, w, h);
  // The time axis spans what the page has seen (2 minutes at least), up to the hour it keeps.
  const now = Date.now();
  const span = Math.min(HISTORY_SEC * 1000, Math.max(120_000, history.length ? now - history[0].t : 0));
  const t0 = now - span;
  const max = Math.max(1, ...history.map((p) => p.total), ...history.flatMap((p) => Object.values(p.links)));
  const x = (t) => 50 + ((t - t0) / span) * (w - 60);
  const y = (v) => h - 20 - (v / max) * (h - 35);
  g.strokeStyle = '#d9dde4'; g.fillStyle = '#667085'; g.font = '11px system-ui';
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    g.beginPath(); g.moveTo(50, y(v)); g.lineTo(w - 10, y(v)); g.stroke();
    g.fillText(rate(v), 2, y(v) + 4);
  }
  for (let i = 0; i <= 6; i++) {
    const ago = (span * (6 - i)) / 6 / 1000;
    g.fillText(ago >= 120 ? `-${Math.round(ago / 60)} min` : `-${Math.round(ago)} s`, x(t0 + (span * i) / 6) - 18, h - 4);
  }
  const line = (pick, color, width) => {
    g.strokeStyle = color; g.lineWidth = width; g.beginPath();
    history.forEach((p, i) => (i ? g.lineTo(x(p.t), y(pick(p))) : g.moveTo(x(p.t), y(pick(p)))));
    g.stroke();
  };
  const links = new Set(history.flatMap((p) => Object.keys(p.links)));
  for (const l of links) line((p) => p.links[l] ?? 0, colorOf(l), 1.5);
  line((p) => p.total, '#102a43', 2.5);
  $('legend').replaceChildren(
    el('span', {}, Object.assign(el('i'), { style: 'background:#102a43' }), 'total'),
    ...[...links].map((l) => el('span', {}, Object.assign(el('i'), { style: `background:${colorOf(l)}` }), l)),
  );
}

// ---- views ----
function showStatus(s) {
  $('total-rate').textContent = rate(s.transfers.rateBytesPerSec);
  $('total-rate').dataset.bytesPerSec = String(s.transfers.rateBytesPerSec);
  $('active-count').textContent = s.transfers.active;
  $('jobs-count').textContent = s.jobs.active;
  $('waiting-count').textContent = `${s.queues.waitingFiles} (+${s.queues.queued} queued)`;
  $('run-queue').textContent = `${s.queues.runQueueWaiting} / ${s.queues.runQueueDelayed} / ${s.queues.runQueueActive}`;
  $('workers-count').textContent = `${s.workers.filter((w) => w.alive).length} / ${s.workers.length}`;
  fill('scopes', s.scopes.map((sc) => el('tr', { 'data-scope': `${sc.scope}:${sc.target}` }, el('td', {}, sc.scope), el('td', {}, sc.target || '-'),
    el('td', { class: `state-${sc.effectiveState}` }, sc.effectiveState))));
  fill('breakers', (s.unavailableEndpoints ?? []).length
    ? s.unavailableEndpoints.map((b) => el('tr', {}, el('td', {}, b.endpoint), el('td', { class: `state-${b.state}` }, b.state),
      el('td', {}, b.cause === 'full' ? `destination full: ${b.detail ?? ''}` : `unreachable (${b.failuresInARow} failed connects)`), el('td', {}, b.retryAt)))
    : [el('tr', {}, el('td', { colSpan: 4 }, 'none tripped'))]);
  const links = Object.keys({ ...s.slots.links, ...(s.transfers.links ?? {}) });
  fill('links', links.length
    ? links.map((l) => el('tr', {}, el('td', {}, l), el('td', {}, s.slots.links[l] ?? 0), el('td', {}, rate(s.transfers.links?.[l] ?? 0))))
    : [el('tr', {}, el('td', { colSpan: 3 }, 'no active link'))]);
}

function showJobs(jobs) {
  fill('jobs', jobs.map((j) => el('tr', {
    class: 'clickable', 'data-job': j.jobId, 'data-bytes-done': String(j.bytesDone), 'data-state': j.state,
    onclick: () => openJob(j.jobId),
  },
  el('td', {}, el('code', {}, j.jobId.slice(0, 8))), el('td', {}, j.owner), el('td', { class: `state-${j.state}` }, j.state),
  el('td', {}, progressBar(jobFraction(j))),
  el('td', {}, `${terminal(j.counts)}/${j.files}${j.counts.FAILED ? ` (${j.counts.FAILED} failed)` : ''}`),
  el('td', {}, j.bytesTotal ? `${bytes(j.bytesDone)} / ${bytes(j.bytesTotal)}` : bytes(j.bytesDone)),
  el('td', {}, rate(j.rateBytesPerSec)), el('td', {}, j.state === 'ACTIVE' ? eta(j.etaSec) : ''))));
}

const lastBytes = new Map(); // `${job}/${file}` -> {bytes, t}
function showTransfers(files) {
  const now = Date.now();
  const rows = files.map((f) => {
    const key = `${f.jobId}/${f.fileId}`;
    const prev = lastBytes.get(key);
    const r = prev && now > prev.t ? ((f.bytes - prev.bytes) * 1000) / (now - prev.t) : 0;
    lastBytes.set(key, { bytes: f.bytes, t: now });
    return el('tr', { 'data-transfer': key }, el('td', {}, el('code', {}, f.jobId.slice(0, 8))), el('td', {}, f.fileId),
      el('td', { class: 'url' }, `${f.source} → ${f.destination}`),
      el('td', {}, f.size ? progressBar(f.bytes / f.size) : bytes(f.bytes), f.size ? ` ${bytes(f.bytes)} / ${bytes(f.size)}` : ''),
      el('td', {}, rate(Math.max(0, r))));
  });
  for (const k of lastBytes.keys()) if (!files.some((f) => `${f.jobId}/${f.fileId}` === k)) lastBytes.delete(k);
  fill('transfers', rows.length ? rows : [el('tr', {}, el('td', { colSpan: 5 }, 'no active transfer'))]);
}

function showLimits(list) {
  if (list.error) return fill('limits', [el('tr', {}, el('td', { colSpan: 3, class: 'error' }, `limits: ${list.error}`))]);
  fill('limits', list.length ? list.map((l) => el('tr', {}, el('td', {}, l.scope), el('td', {}, l.target || '-'), el('td', {}, `${l.bytesPerSec} (${rate(l.bytesPerSec)})`)))
    : [el('tr', {}, el('td', { colSpan: 3 }, 'no limits'))]);
}

// ---- drill-down: a job's files, a file's attempts ----
let openJobId;
async function openJob(jobId) {
  openJobId = jobId;
  $('drill').hidden = false;
  $('drill-job').textContent = jobId;
  $('attempts').replaceChildren();
  await refreshDrill();
}
$('drill-close').addEventListener('click', () => { openJobId = undefined; $('drill').hidden = true; });
$('drill-state').addEventListener('change', () => refreshDrill());
async function refreshDrill() {
  if (!openJobId) return;
  const state = $('drill-state').value;
  const page = await api('GET', `/jobs/${openJobId}/files?limit=200${state ? '&state=' + state : ''}`);
  fill('files', page.files.map((f) => el('tr', { class: 'clickable', 'data-file': String(f.fileId), onclick: () => openFile(f.jobId, f.fileId) },
    el('td', {}, f.fileId), el('td', { class: `state-${f.state}` }, f.state), el('td', { class: 'url' }, `${f.source} → ${f.destination}`),
    el('td', {}, f.size !== undefined ? `${bytes(f.bytes)} / ${bytes(f.size)}` : bytes(f.bytes)), el('td', {}, f.attempts.length),
    el('td', { class: f.error ? 'error' : '' }, f.error ? `${f.error.code}: ${f.error.message}` : ''))));
}
async function openFile(jobId, fileId) {
  const f = await api('GET', `/jobs/${jobId}/files/${fileId}`);
  const rows = f.attempts.map((a, i) => el('tr', {}, el('td', {}, i + 1), el('td', {}, new Date(a.start).toISOString()),
    el('td', {}, a.end ? `${((a.end - a.start) / 1000).toFixed(1)} s` : 'running'), el('td', {}, bytes(a.bytes ?? 0)), el('td', {}, rate(a.rateBytesPerSec ?? 0)),
    el('td', {}, a.remoteIp ?? ''), el('td', {}, a.protocol ?? ''), el('td', {}, a.streams ?? ''), el('td', {}, a.outcome ?? ''),
    el('td', { class: a.errorCode ? 'error' : '' }, a.errorCode ? `${a.errorCode}: ${a.errorMessage ?? ''}` : '')));
  $('attempts').replaceChildren(el('h2', {}, `Attempts of file ${fileId}`), el('table', { id: 'attempt-table' },
    el('thead', {}, el('tr', {}, ...['#', 'start', 'duration', 'bytes', 'rate', 'remote IP', 'protocol', 'streams', 'outcome', 'error'].map((h) => el('th', {}, h)))),
    el('tbody', {}, ...rows)));
}

// ---- admin ----
function note(text, bad = false) {
  $('admin-result').textContent = text;
  $('admin-result').className = bad ? 'note error' : 'note';
}
for (const b of document.querySelectorAll('#admin-form button[data-op]')) {
  b.addEventListener('click', async () => {
    const op = b.dataset.op, scope = $('admin-scope').value, target = $('admin-target').value.trim();
    if (!confirm(`${op} ${scope}${target ? ' ' + target : ''}?`)) return;
    try {
      const r = await api('POST', `/admin/${op}`, scope === 'port' ? { scope } : { scope, target });
      note(`${op}: ${r.scope} ${r.target || ''} is ${r.state}`);
    } catch (e) {
      note(`${op} failed: ${e.message}`, true);
    }
    refresh();
  });
}
$('limit-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const scope = $('limit-scope').value, target = $('limit-target').value.trim(), raw = $('limit-rate').value.trim();
  const bytesPerSec = raw === '' ? null : Number(raw);
  if (bytesPerSec !== null && !(Number.isSafeInteger(bytesPerSec) && bytesPerSec > 0)) return note('bytes/s must be a positive integer, or empty to remove', true);
  if (!confirm(bytesPerSec === null ? `remove the ${scope} limit${target ? ' of ' + target : ''}?` : `limit ${scope}${target ? ' ' + target : ''} to ${rate(bytesPerSec)}?`)) return;
  try {
    showLimits(await api('PUT', '/admin/limits', { scope, ...(target ? { target } : {}), bytesPerSec }));
    note('limit set');
  } catch (e) {
    note(`limit failed: ${e.message}`, true);
  }
});

// ---- exports: definitions, their last run's report, run history on click ----
function scheduleText(d) {
  return d.schedule.cron ? `${d.schedule.cron} (${d.schedule.timezone ?? 'UTC'})` : `every ${d.schedule.everyMinutes} min`;
}
function runCells(r) {
  if (!r) return [el('td', {}, 'never ran'), el('td', {}), el('td', {}), el('td', {}), el('td', {})];
  const f = r.files;
  return [
    el('td', { class: `state-${r.state}` }, `${r.state} (${r.trigger}) ${new Date(r.scheduledFor).toLocaleString()}`),
    el('td', {}, `${f.finished}/${f.submitted}${f.failed ? ` (${f.failed} failed)` : ''}, ${f.alreadyExported} already exported`),
    el('td', {}, bytes(r.bytes)), el('td', {}, r.rateBytesPerSec ? rate(r.rateBytesPerSec) : ''),
    el('td', { class: r.deadlineMissed ? 'state-FAILED' : '' }, r.deadline ? (r.deadlineMissed ? 'missed' : 'ok') : ''),
  ];
}
async function exportAction(name, op) {
  if (!confirm(`${op} export ${name}?`)) return;
  try {
    await api('POST', `/exports/${encodeURIComponent(name)}/${op}`, {});
    note(`export ${name}: ${op} done`);
  } catch (e) {
    note(`export ${name}: ${e.message}`, true);
  }
  refresh();
}
async function openExportRuns(name) {
  const { runs } = await api('GET', `/exports/${encodeURIComponent(name)}/runs?limit=20`);
  const box = $('export-runs');
  box.replaceChildren(el('h3', {}, `Runs of ${name}`), el('table', {},
    el('thead', {}, el('tr', {}, ...['due', 'state', 'files', 'bytes', 'rate', 'deadline', 'failures'].map((h) => el('th', {}, h)))),
    el('tbody', {}, ...runs.map((r) => el('tr', {},
      el('td', {}, new Date(r.scheduledFor).toLocaleString()), el('td', { class: `state-${r.state}` }, `${r.state} (${r.trigger})${r.reason ? `: ${r.reason}` : ''}`),
      el('td', {}, `${r.files.finished}/${r.files.submitted} (${r.files.selected} selected)`), el('td', {}, bytes(r.bytes)),
      el('td', {}, r.rateBytesPerSec ? rate(r.rateBytesPerSec) : ''), el('td', {}, r.deadline ? (r.deadlineMissed ? 'missed' : 'ok') : ''),
      el('td', {}, r.failures.slice(0, 5).map((f) => `${f.path ?? ''} ${f.code}: ${f.message}`).join('; ')))))));
}
function showExports(list) {
  if (list.error) return fill('exports', [el('tr', {}, el('td', { colSpan: 10 }, list.error))]);
  fill('exports', list.exports.length === 0 ? [el('tr', {}, el('td', { colSpan: 10 }, 'no exports'))] : list.exports.map((x) => el('tr', { 'data-export': x.definition.name },
    el('td', { class: 'clickable', onclick: () => openExportRuns(x.definition.name) }, x.definition.name), el('td', {}, x.owner),
    el('td', {}, scheduleText(x.definition)), el('td', {}, x.paused ? 'paused' : x.nextRunAt ? new Date(x.nextRunAt).toLocaleString() : ''),
    ...runCells(x.lastRun),
    el('td', {},
      el('button', { type: 'button', onclick: () => exportAction(x.definition.name, 'run') }, 'run now'),
      el('button', { type: 'button', onclick: () => exportAction(x.definition.name, x.paused ? 'resume' : 'pause') }, x.paused ? 'resume' : 'pause')))));
}

// ---- refresh loop and events ----
let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    // Limits need admin rights: a user who is not an administrator still gets the rest of the page.
    const [status, page, limits, exportList] = await Promise.all([
      api('GET', '/status'), api('GET', '/jobs?limit=30'), api('GET', '/admin/limits').catch((e) => ({ error: e.message })),
      api('GET', '/exports').catch((e) => ({ error: e.message })),
    ]);
    record(status, true);
    showStatus(status);
    showJobs(page.jobs);
    showLimits(limits);
    showExports(exportList);
    const active = page.jobs.filter((j) => j.state === 'ACTIVE' && (j.counts.ACTIVE ?? 0) > 0).slice(0, 10);
    const pages = await Promise.all(active.map((j) => api('GET', `/jobs/${j.jobId}/files?state=ACTIVE&limit=50`)));
    showTransfers(pages.flatMap((p) => p.files));
    if (openJobId) await refreshDrill();
    drawPlot();
    // Counted so that tests (and curious operators) can tell one refresh from the next.
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes ?? 0) + 1);
    $('conn').textContent = 'live';
    $('conn').className = 'pill ok';
  } catch (e) {
    $('conn').textContent = `error: ${e.message}`;
    $('conn').className = 'pill bad';
  } finally {
    busy = false;
  }
}

// EventSource cannot send a bearer token: read the SSE stream with fetch instead. A state change refreshes the
// view at once rather than at the next poll.
let events;
async function followEvents() {
  const ctl = new AbortController();
  events = ctl;
  try {
    const res = await fetch(`${API}/events?throughput=1`, { headers: headers({ accept: 'text/event-stream' }), signal: ctl.signal });
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (!data) continue;
        if (/^event: throughput$/m.test(frame)) {
          lastThroughputEvent = Date.now();
          const s = JSON.parse(data);
          if (s.total > 0) document.body.dataset.movingSamples = String(Number(document.body.dataset.movingSamples ?? 0) + 1);
          record({ transfers: { rateBytesPerSec: s.total, links: s.links } });
          drawPlot();
        } else setTimeout(refresh, 50);
      }
    }
  } catch (e) {
    if (ctl.signal.aborted) return;
  }
  if (!ctl.signal.aborted) setTimeout(followEvents, 2000);
}
function restartEvents() {
  events?.abort();
  followEvents();
}

refresh();
setInterval(refresh, POLL_MS);
followEvents();
