// The JSON API seen from outside: status codes and error bodies of the
// HTTP -> gRPC gateway, the browser-safety checks, whoami, the console's
// static files, and the Server-Sent Events watch. Needs no browser.
//   AIRD=build/service/aird node --test json_api.test.mjs
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { call, startAird } from './lib/aird.mjs';

let aird;
before(async () => { aird = await startAird({ logDir: process.env.ARTIFACTS }); });
after(async () => {
  const result = await aird.stop();
  assert.deepEqual(result, { code: 0, signal: null }, 'aird exits 0 on SIGTERM, promptly');
});

// Reads SSE frames until `done(frames)` is true or `ms` passes.
async function readSse(res, done, ms = 10000) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const frames = [];
  let buffer = '';
  const timer = setTimeout(() => reader.cancel(), ms);
  try {
    while (!done(frames)) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const frame = {};
        for (const line of block.split('\n')) {
          const i = line.indexOf(':');
          if (i <= 0) continue;
          frame[line.slice(0, i)] = line.slice(i + 1).trimStart();
        }
        if (frame.data) frame.json = JSON.parse(frame.data);
        if (frame.event) frames.push(frame);
      }
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => {});
  }
  return frames;
}

function rawRequest(path, headers) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: aird.httpPort, path, headers }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(body) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('error mapping', () => {
  test('a malformed id is 400 INVALID_ID naming the field', async () => {
    const r = await call(aird, 'GET', '/api/v1/actions/bad%20id!', { token: aird.tokens.viewer });
    assert.equal(r.status, 400);
    assert.equal(r.body.code, 'INVALID_ARGUMENT');
    assert.equal(r.body.reason, 'INVALID_ID');
    assert.equal(r.body.field, 'id');
    assert.ok(r.body.message.length > 0);
  });

  test('no token is 401 CREDENTIALS_MISSING', async () => {
    const r = await call(aird, 'GET', '/api/v1/investigations');
    assert.equal(r.status, 401);
    assert.equal(r.body.code, 'UNAUTHENTICATED');
    assert.equal(r.body.reason, 'CREDENTIALS_MISSING');
  });

  test('an unknown token is 401 TOKEN_INVALID and is not echoed', async () => {
    const r = await call(aird, 'GET', '/api/v1/investigations', { token: 'not-a-real-token' });
    assert.equal(r.status, 401);
    assert.equal(r.body.reason, 'TOKEN_INVALID');
    assert.ok(!JSON.stringify(r.body).includes('not-a-real-token'));
  });

  test('a viewer deciding is 403 ROLE_REQUIRED, before the action is looked up', async () => {
    for (const path of ['/api/v1/actions/act-1001-2:approve', '/api/v1/actions/no-such:reject']) {
      const r = await call(aird, 'POST', path, { token: aird.tokens.viewer, body: {} });
      assert.equal(r.status, 403, path);
      assert.equal(r.body.code, 'PERMISSION_DENIED');
      assert.equal(r.body.reason, 'ROLE_REQUIRED');
      assert.equal(r.body.metadata.required_role, 'approver');
    }
    const batch = await call(aird, 'POST', '/api/v1/actions:batchDecide', {
      token: aird.tokens.viewer,
      body: { ids: ['act-1001-2'], decision: 'BATCH_DECISION_REJECT' },
    });
    assert.equal(batch.status, 403);
    const still = await call(aird, 'GET', '/api/v1/actions/act-1001-2', { token: aird.tokens.viewer });
    assert.equal(still.body.action.state, 'STATE_PENDING');
  });

  test('an unknown action is 404 ACTION_NOT_FOUND', async () => {
    const r = await call(aird, 'GET', '/api/v1/actions/act-9999', { token: aird.tokens.viewer });
    assert.equal(r.status, 404);
    assert.equal(r.body.reason, 'ACTION_NOT_FOUND');
  });

  test('a stale etag is 412 ETAG_MISMATCH; deciding twice is 409 ACTION_NOT_PENDING', async () => {
    const stale = await call(aird, 'POST', '/api/v1/actions/act-1005-1:approve', {
      token: aird.tokens.approver, body: { etag: 'stale' },
    });
    assert.equal(stale.status, 412);
    assert.equal(stale.body.code, 'ABORTED');
    assert.equal(stale.body.reason, 'ETAG_MISMATCH');

    const first = await call(aird, 'POST', '/api/v1/actions/act-1005-1:approve', {
      token: aird.tokens.approver, body: { comment: 'confirmed', requestId: 'req-1' },
    });
    assert.equal(first.status, 200);
    assert.equal(first.body.action.state, 'STATE_APPROVED');
    assert.equal(first.body.action.decision.decider, 'alice');
    assert.equal(first.body.action.decision.comment, 'confirmed');

    const replay = await call(aird, 'POST', '/api/v1/actions/act-1005-1:approve', {
      token: aird.tokens.approver, body: { comment: 'confirmed', requestId: 'req-1' },
    });
    assert.equal(replay.status, 200, 'the same request_id returns the first result');

    const again = await call(aird, 'POST', '/api/v1/actions/act-1005-1:reject', {
      token: aird.tokens.approver, body: {},
    });
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'FAILED_PRECONDITION');
    assert.equal(again.body.reason, 'ACTION_NOT_PENDING');
    assert.equal(again.body.metadata.state, 'STATE_APPROVED');
  });

  test('a batch of mixed types is refused whole', async () => {
    const r = await call(aird, 'POST', '/api/v1/actions:batchDecide', {
      token: aird.tokens.approver,
      body: { ids: ['act-1003-1', 'act-1003-3'], decision: 'BATCH_DECISION_REJECT' },
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.reason, 'MIXED_ACTION_TYPES');
  });

  test('bad JSON, unknown parameters and bad filters are 400', async () => {
    const json = await call(aird, 'POST', '/api/v1/actions/act-1001-2:approve', {
      token: aird.tokens.approver, body: '{"comment": ',
    });
    assert.equal(json.status, 400);
    assert.equal(json.body.reason, 'INVALID_JSON');
    const field = await call(aird, 'POST', '/api/v1/actions/act-1001-2:approve', {
      token: aird.tokens.approver, body: { decider: 'mallory' },
    });
    assert.equal(field.status, 400, 'who decides comes from the token, never the body');
    const param = await call(aird, 'GET', '/api/v1/investigations?colour=red', {
      token: aird.tokens.viewer,
    });
    assert.equal(param.status, 400);
    assert.equal(param.body.reason, 'UNKNOWN_PARAMETER');
    assert.equal(param.body.field, 'colour');
    const filter = await call(aird, 'GET',
        `/api/v1/investigations?filter=${encodeURIComponent('colour = red')}`,
        { token: aird.tokens.viewer });
    assert.equal(filter.status, 400);
    assert.equal(filter.body.reason, 'INVALID_FILTER');
    const size = await call(aird, 'GET', '/api/v1/actions?page_size=-1', { token: aird.tokens.viewer });
    assert.equal(size.status, 400);
    assert.equal(size.body.reason, 'INVALID_PAGE_SIZE');
    const comment = await call(aird, 'POST', '/api/v1/actions/act-1001-2:approve', {
      token: aird.tokens.approver, body: { comment: 'x'.repeat(1025) },
    });
    assert.equal(comment.status, 400);
    assert.equal(comment.body.reason, 'COMMENT_TOO_LONG');
    assert.equal(comment.body.field, 'comment');
  });

  test('unknown endpoints are 404 JSON', async () => {
    const r = await call(aird, 'GET', '/api/v1/nothing-here', { token: aird.tokens.viewer });
    assert.equal(r.status, 404);
    assert.equal(r.body.reason, 'NOT_FOUND');
    const post = await call(aird, 'POST', '/api/v1/actions/x:explode', {
      token: aird.tokens.approver, body: {},
    });
    assert.equal(post.status, 404);
  });
});

describe('browser safety', () => {
  test('a POST that is not JSON is 415 (no simple cross-site form posts)', async () => {
    const r = await call(aird, 'POST', '/api/v1/actions/act-1001-2:approve', {
      token: aird.tokens.approver, body: 'comment=x', headers: { 'Content-Type': 'text/plain' },
    });
    assert.equal(r.status, 415);
    assert.equal(r.body.reason, 'UNSUPPORTED_MEDIA_TYPE');
  });

  test('a POST from another origin is 403 ORIGIN_NOT_ALLOWED', async () => {
    const r = await call(aird, 'POST', '/api/v1/actions/act-1001-2:approve', {
      token: aird.tokens.approver, body: {}, headers: { Origin: 'http://evil.example' },
    });
    assert.equal(r.status, 403);
    assert.equal(r.body.reason, 'ORIGIN_NOT_ALLOWED');
    const same = await call(aird, 'GET', '/api/v1/actions/act-1001-2', { token: aird.tokens.viewer });
    assert.equal(same.body.action.state, 'STATE_PENDING');
  });

  test('a non-loopback Host is refused on a loopback listener (DNS rebinding)', async () => {
    const r = await rawRequest('/api/whoami', { Host: '127.0.0.1.evil.example' });
    assert.equal(r.status, 403);
    assert.equal(r.body.reason, 'HOST_NOT_ALLOWED');
  });

  test('pages carry a strict Content-Security-Policy and no CORS grant', async () => {
    const r = await fetch(aird.baseUrl + '/');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /text\/html/);
    assert.match(r.headers.get('content-security-policy'), /default-src 'none'/);
    assert.equal(r.headers.get('access-control-allow-origin'), null);
    assert.match(await r.text(), /<script src="app.js"/);
    const js = await fetch(aird.baseUrl + '/app.js');
    assert.match(js.headers.get('content-type'), /javascript/);
    const api = await call(aird, 'GET', '/api/whoami', { token: aird.tokens.viewer });
    assert.equal(api.headers.get('cache-control'), 'no-store');
  });
});

describe('whoami', () => {
  test('tells each token its principal and role, computed by the server', async () => {
    const viewer = await call(aird, 'GET', '/api/whoami', { token: aird.tokens.viewer });
    assert.equal(viewer.status, 200);
    assert.deepEqual(viewer.body, {
      principal: 'victor', role: 'ROLE_VIEWER', canDecide: false, authenticationEnabled: true,
    });
    const approver = await call(aird, 'GET', '/api/whoami', { token: aird.tokens.approver });
    assert.equal(approver.body.principal, 'alice');
    assert.equal(approver.body.canDecide, true);
    const nobody = await call(aird, 'GET', '/api/whoami');
    assert.equal(nobody.status, 401);
  });
});

describe('reads', () => {
  test('lists page with tokens, filter and order', async () => {
    const first = await call(aird, 'GET', '/api/v1/investigations?page_size=3&order_by=create_time',
                             { token: aird.tokens.viewer });
    assert.equal(first.status, 200);
    assert.equal(first.body.investigations.length, 3);
    assert.ok(first.body.nextPageToken);
    const second = await call(aird, 'GET',
        `/api/v1/investigations?pageSize=3&orderBy=create_time&pageToken=${encodeURIComponent(first.body.nextPageToken)}`,
        { token: aird.tokens.viewer });
    assert.equal(second.status, 200);
    const ids = [...first.body.investigations, ...second.body.investigations].map((i) => i.id);
    assert.equal(new Set(ids).size, 6);
    const pendingOnly = await call(aird, 'GET',
        `/api/v1/actions?filter=${encodeURIComponent('state = STATE_PENDING AND type = ACTION_TYPE_SOFT_DELETE_EMAIL')}`,
        { token: aird.tokens.viewer });
    assert.ok(pendingOnly.body.actions.length >= 1);
    for (const a of pendingOnly.body.actions) {
      assert.equal(a.state, 'STATE_PENDING');
      assert.equal(a.type, 'ACTION_TYPE_SOFT_DELETE_EMAIL');
    }
    const inv = await call(aird, 'GET', '/api/v1/investigations/inv-1001', { token: aird.tokens.viewer });
    assert.equal(inv.body.investigation.id, 'inv-1001');
    assert.equal(typeof inv.body.investigation.actionCounts.pending, 'number');
  });
});

describe('watch (Server-Sent Events)', () => {
  test('errors before the stream starts are plain HTTP errors', async () => {
    const none = await fetch(aird.baseUrl + '/api/v1/actions:watch');
    assert.equal(none.status, 401);
    assert.equal((await none.json()).reason, 'CREDENTIALS_MISSING');
    const bad = await fetch(aird.baseUrl + '/api/v1/actions:watch?filter=colour%20%3D%20red',
                            { headers: { Authorization: `Bearer ${aird.tokens.viewer}` } });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).reason, 'INVALID_FILTER');
  });

  test('snapshot, live events with ids, and resume with Last-Event-ID', async () => {
    const headers = { Authorization: `Bearer ${aird.tokens.viewer}` };
    const res = await fetch(aird.baseUrl + '/api/v1/actions:watch?filter=' +
                            encodeURIComponent('investigation_id = "inv-1002"'), { headers });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /text\/event-stream/);
    let decided = false;
    const frames = await readSse(res, (fs) => {
      if (!decided && fs.some((f) => f.event === 'snapshot_complete')) {
        decided = true;
        call(aird, 'POST', '/api/v1/actions/act-1002-2:reject', {
          token: aird.tokens.approver, body: { comment: 'false positive' },
        });
      }
      return fs.some((f) => f.event === 'event' && f.json.event.type === 'TYPE_ACTION_REJECTED');
    });
    const snapshot = frames.filter((f) => f.event === 'snapshot_action');
    assert.ok(snapshot.some((f) => f.json.snapshotAction.id === 'act-1002-2'));
    const complete = frames.find((f) => f.event === 'snapshot_complete');
    const event = frames.find((f) => f.event === 'event' &&
                              f.json.event.type === 'TYPE_ACTION_REJECTED');
    assert.equal(event.json.event.action.id, 'act-1002-2');
    assert.equal(event.json.event.action.decision.decider, 'alice');
    assert.equal(event.id, String(event.json.event.sequence));
    assert.ok(Number(event.id) > Number(complete.id));

    // Resuming from the snapshot point replays the rejection.
    const resumed = await fetch(aird.baseUrl + '/api/v1/actions:watch?filter=' +
                                encodeURIComponent('investigation_id = "inv-1002"'),
                                { headers: { ...headers, 'Last-Event-ID': complete.id } });
    assert.equal(resumed.status, 200);
    const again = await readSse(resumed, (fs) => fs.some((f) => f.event === 'event'));
    assert.equal(again.find((f) => f.event === 'event').id, event.id);
    assert.ok(!again.some((f) => f.event === 'snapshot_action'), 'no snapshot on resume');
  });

  test('a cursor ahead of the log is refused', async () => {
    const r = await fetch(aird.baseUrl + '/api/v1/actions:watch',
                          { headers: { Authorization: `Bearer ${aird.tokens.viewer}`,
                                       'Last-Event-ID': '999999999' } });
    assert.equal(r.status, 400);
    assert.equal((await r.json()).reason, 'CURSOR_AHEAD');
  });
});
