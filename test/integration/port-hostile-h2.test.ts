/**
 * Hostile HTTP/2 sources through the whole port (gateway → queue → worker → engine → the bulk receive path): each
 * of four servers answers with one of the attacks that used to crash the worker process (a 0-byte GOAWAY or
 * RST_STREAM: RangeError inside `onread`, and again after every restart) or publish a wrong file (a second
 * `:status`, DATA after trailers). Now each such file fails with CARGO_ERR_PEER_PROTOCOL naming the cause after its
 * retry, nothing of it is published, a well-behaved source in the same job completes, and the port answers on.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startHarness, type Harness } from '../support/port-harness.js';
import {
  FrameType, answerEveryRequest, dataFrame, h2Frame, headersFrame, hpackLiteral, responseBlock, startHostileH2Server,
  type HostileServer,
} from '../support/hostile-h2-server.js';
import { tempDir } from '../support/fixtures.js';

const BODY = Buffer.from('a file from a well-behaved HTTP/2 server\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const attacks: Array<[string, (stream: number) => Buffer[], RegExp]> = [
  ['goaway0', () => [h2Frame(FrameType.GOAWAY, 0, 0)], /0-byte GOAWAY frame/],
  ['rst0', (s) => [h2Frame(FrameType.RST_STREAM, 0, s)], /0-byte RST_STREAM frame/],
  ['status2', (s) => [headersFrame(s, Buffer.concat([hpackLiteral(':status', '500'), hpackLiteral(':status', '200')])), dataFrame(s, Buffer.from('<h1>error</h1>'), true)], /more than one :status/],
  ['trailer-data', (s) => [headersFrame(s, responseBlock('200')), dataFrame(s, BODY), headersFrame(s, hpackLiteral('x-t', '1')), dataFrame(s, Buffer.from('more'), true)], /trailers without END_STREAM/],
];

describe('port: hostile HTTP/2 sources', () => {
  let h: Harness;
  const servers: HostileServer[] = [];
  before(async () => {
    h = await startHarness({ workers: { concurrency: 4 } });
  });
  after(async () => {
    await h.close();
    for (const s of servers) await s.close();
  });

  test('each attack fails its own file with CARGO_ERR_PEER_PROTOCOL and its reason; the good file and the port live on', async () => {
    for (const [, frames] of attacks) servers.push(await startHostileH2Server(answerEveryRequest(frames)));
    const good = await startHostileH2Server(answerEveryRequest((s) => [
      headersFrame(s, responseBlock('200', [['content-length', String(BODY.length)]])), dataFrame(s, BODY, true),
    ]));
    servers.push(good);
    const dst = tempDir('port-hostile');
    const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
      files: [
        ...attacks.map(([name], i) => ({ source: servers[i]!.url(`/${name}`), destination: `file://${dst}/${name}` })),
        { source: good.url('/good'), destination: `file://${dst}/good` },
      ],
      params: { retries: 1, retryDelaySec: 0 },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    let state = 'ACTIVE';
    for (let i = 0; i < 600 && state === 'ACTIVE'; i++) {
      state = (await h.api<{ state: string }>('GET', `/api/v1/jobs/${r.body.jobId}`)).body.state;
      if (state === 'ACTIVE') await sleep(100);
    }
    assert.equal(state, 'FINISHED_DIRTY');
    for (const [i, [name, , reason]] of attacks.entries()) {
      const view = (await h.api<{ state: string; error?: { code: string; message: string }; attempts: unknown[] }>('GET', `/api/v1/jobs/${r.body.jobId}/files/${i}`)).body;
      assert.equal(view.state, 'FAILED', `${name}: ${JSON.stringify(view)}`);
      assert.equal(view.error?.code, 'CARGO_ERR_PEER_PROTOCOL', `${name}: ${JSON.stringify(view.error)}`);
      assert.match(view.error!.message, reason, name);
      assert.equal(view.attempts.length, 2, `${name}: retried once, then FAILED`);
    }
    const goodView = (await h.api<{ state: string }>('GET', `/api/v1/jobs/${r.body.jobId}/files/${attacks.length}`)).body;
    assert.equal(goodView.state, 'FINISHED');
    assert.deepEqual(readFileSync(`${dst}/good`), BODY);
    assert.deepEqual(readdirSync(dst), ['good'], 'nothing of the hostile answers was published (and no part file stays)');
    // The worker that ran the attacks still runs the next job.
    const next = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', { files: [{ source: good.url('/again'), destination: `file://${dst}/again` }] });
    assert.equal((await h.waitJob(next.body.jobId)).state, 'FINISHED');
  });
});
