// The Stop request and the DNS-rebinding guard of a real `azops run`, at the HTTP level (plain `http`
// requests with exactly the headers an attacker could send) and from a page of another origin in
// headless Chromium. Every refused request is followed by a look at the child: it must still run.
//
//   AZOPS_BIN=build/.../azops node --test --test-concurrency=1 tests/browser/security.test.mjs
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { launchBrowser } from './browser.mjs';
import { AZOPS_BIN, Cleanup, groupGone, processGone, waitFor } from './azops_process.mjs';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
after(() => cleanup.run());
before(() => assert.ok(AZOPS_BIN, 'set AZOPS_BIN to the built azops binary'));

// One request on a fresh connection; `headers` are sent as given (Host included).
function request(port, { method = 'GET', path: target = '/', headers = {}, body = '' } = {}) {
  return new Promise((resolve, reject) => {
    const sent = { ...headers };
    if (method === 'POST' && sent['Content-Length'] === undefined) sent['Content-Length'] = Buffer.byteLength(body);
    const req = http.request({ host: '127.0.0.1', port, method, path: target, headers: sent, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// `azops run` serving its dashboard on a free port, its child sleeping until stopped.
async function liveRun() {
  const dir = cleanup.dir('azops-security-');
  const statusFile = path.join(dir, 's.json');
  const proc = cleanup.azops(['run', '--no-open', '--port', '0', '--status-file', statusFile, '--task', 'guarded',
    '--', 'sh', '-c', 'echo "pid $$"; while :; do sleep 1; done'], { cwd: dir });
  const url = await proc.url();
  const pid = Number((await proc.waitForOutput(/^pid (\d+)$/m))[1]);
  cleanup.group(pid);
  const port = Number(new URL(url).port);
  const page = await request(port, { headers: { Host: `127.0.0.1:${port}` } });
  const token = /<meta name="azops-token" content="([0-9a-f]*)">/.exec(page.body)[1];
  const run = { dir, statusFile, proc, url, pid, port, token, origin: `http://127.0.0.1:${port}` };
  // The writer publishes at most every 100 ms: the first document can still be the one from before
  // the task began.
  await waitFor(async () => {
    const s = await currentStatus(run);
    return s.state === 'running' && s.cancellable === true;
  }, { what: 'the served status to say the task runs and can be stopped' });
  return run;
}

async function currentStatus(run) {
  const res = await request(run.port, { path: '/api/azure-ops-status', headers: { Host: `127.0.0.1:${run.port}` } });
  assert.equal(res.status, 200);
  return JSON.parse(res.body);
}

// The child runs and the task is still running and stoppable.
async function assertStillRunning(run, after) {
  assert.equal(processGone(run.pid), false, `the child must survive ${after}`);
  const s = await currentStatus(run);
  assert.equal(s.state, 'running', `the task must still run after ${after}`);
  assert.equal(s.cancellable, true);
}

function cancel(run, headers) {
  return request(run.port, { method: 'POST', path: '/api/azure-ops/cancel', headers: { Host: `127.0.0.1:${run.port}`, ...headers } });
}

describe('the judged scenario, over plain HTTP', () => {
  test('the run token is per run, 48 hex characters, and readable only by its owner', { timeout: 20000 }, async () => {
    const run = await liveRun();
    assert.match(run.token, /^[0-9a-f]{48}$/);
    assert.equal(fs.readFileSync(`${run.statusFile}.token`, 'utf8').trim(), run.token);
    assert.equal(fs.statSync(`${run.statusFile}.token`).mode & 0o777, 0o600);
    const other = await liveRun();
    assert.notEqual(other.token, run.token);
  });

  test('a foreign Host header is refused, on every path, without the token in the answer', { timeout: 20000 }, async () => {
    const run = await liveRun();
    for (const host of ['evil.example', `evil.example:${run.port}`, `127.0.0.1.evil.example:${run.port}`, `127.0.0.2:${run.port}`]) {
      for (const target of ['/', '/azure_ops.html', '/api/azure-ops-status', '/api/azure-ops-events', '/metrics', '/healthz']) {
        const res = await request(run.port, { path: target, headers: { Host: host } });
        assert.equal(res.status, 403, `GET ${target} with Host ${host}`);
        assert.ok(!res.body.includes(run.token), 'a refused answer must not carry the token');
        assert.equal(res.headers['access-control-allow-origin'], undefined);
      }
      const res = await cancel(run, { Host: host, 'X-Azops-Token': run.token, Origin: `http://${host}` });
      assert.equal(res.status, 403, `POST cancel with the token and Host ${host}`);
    }
    await assertStillRunning(run, 'requests with foreign Host headers');
    // The same requests with our own Host succeed: the 403s above came from the Host check.
    for (const host of [`127.0.0.1:${run.port}`, `localhost:${run.port}`, `LOCALHOST:${run.port}`]) {
      assert.equal((await request(run.port, { path: '/healthz', headers: { Host: host } })).status, 200, host);
    }
  });

  test('Stop needs the token, a same-origin Origin and Sec-Fetch-Site; then the task ends cancelled', { timeout: 30000 }, async () => {
    const run = await liveRun();
    const refusals = [
      ['no token', {}],
      ['an empty token', { 'X-Azops-Token': '' }],
      ['a wrong token', { 'X-Azops-Token': run.token.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')) }],
      ['the token with a prefix too many', { 'X-Azops-Token': `${run.token}0` }],
      ['no token but a same origin', { Origin: run.origin }],
      ['the token from http://evil.example', { 'X-Azops-Token': run.token, Origin: 'http://evil.example' }],
      ['the token from another local port', { 'X-Azops-Token': run.token, Origin: `http://127.0.0.1:${run.port + 1}` }],
      ['the token from Origin null', { 'X-Azops-Token': run.token, Origin: 'null' }],
      ['the token from the same host over https', { 'X-Azops-Token': run.token, Origin: `https://127.0.0.1:${run.port}` }],
      ['the token with Sec-Fetch-Site cross-site', { 'X-Azops-Token': run.token, 'Sec-Fetch-Site': 'cross-site' }],
      ['the token with Sec-Fetch-Site same-site', { 'X-Azops-Token': run.token, Origin: run.origin, 'Sec-Fetch-Site': 'same-site' }],
    ];
    for (const [what, headers] of refusals) {
      const res = await cancel(run, headers);
      assert.equal(res.status, 403, `POST cancel with ${what}: ${res.body}`);
      assert.equal(JSON.parse(res.body).ok, false);
      assert.equal(res.headers['access-control-allow-origin'], undefined);
      await assertStillRunning(run, `POST cancel with ${what}`);
    }
    assert.equal((await request(run.port, { path: '/api/azure-ops/cancel', headers: { Host: `127.0.0.1:${run.port}` } })).status, 405,
      'a GET (a link, an <img>) cannot stop the task');
    await assertStillRunning(run, 'GET cancel');

    const res = await cancel(run, { 'X-Azops-Token': run.token, Origin: run.origin, 'Sec-Fetch-Site': 'same-origin' });
    assert.equal(res.status, 202, res.body);
    assert.deepEqual(JSON.parse(res.body), { ok: true, message: 'stop requested' });
    await waitFor(() => processGone(run.pid), { timeoutMs: 10000, what: `the child ${run.pid} to be gone` });
    await waitFor(() => groupGone(run.pid), { what: 'every process of the child\'s group to be gone' });
    assert.equal(await run.proc.exited, 128 + 15);
    const final = JSON.parse(fs.readFileSync(run.statusFile, 'utf8'));
    assert.equal(final.state, 'cancelled');
    assert.equal(final.cancellable, false);
  });
});

describe('pages of other origins in Chromium', () => {
  let browser;
  let attacker;
  before(async () => {
    // evil.example resolves to this machine, as it would after a DNS rebinding attack.
    browser = await launchBrowser({ extraArgs: ['--host-resolver-rules=MAP evil.example 127.0.0.1'] });
  });
  after(async () => {
    if (browser) await browser.close();
  });
  afterEach(async () => {
    if (!attacker) return;
    attacker.closeAllConnections();  // Chromium keeps its connections open, which close() would wait for
    await new Promise((resolve) => attacker.close(resolve));
    attacker = null;
  });

  // Every request `page` sends to `url`, as Chromium's network layer saw it: the headers it sent
  // and the status the server answered, also when CORS or frame-ancestors then hid the answer.
  async function recordRequests(page, url) {
    const seen = new Map();
    // `asked`: the headers the page asked for; `headers`: those sent, null while (or if never) sent.
    const entry = (id) => seen.get(id) || seen.set(id, { method: null, url: null, asked: {}, headers: null, status: null }).get(id);
    const lower = (headers) => Object.fromEntries(Object.entries(headers || {}).map(([k, v]) => [k.toLowerCase(), v]));
    const cdp = await browser.context.newCDPSession(page);
    cdp.on('Network.requestWillBeSent', (e) =>
      Object.assign(entry(e.requestId), { method: e.request.method, url: e.request.url, asked: lower(e.request.headers) }));
    cdp.on('Network.requestWillBeSentExtraInfo', (e) => { entry(e.requestId).headers = lower(e.headers); });
    cdp.on('Network.responseReceivedExtraInfo', (e) => { entry(e.requestId).status = e.statusCode; });
    await cdp.send('Network.enable');
    return () => [...seen.values()].filter((r) => r.url === url);
  }

  // A second local web server, on another port: the attacker's site.
  function serveAttackPage(html) {
    return new Promise((resolve) => {
      attacker = http.createServer((req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end(html);
      });
      attacker.listen(0, '127.0.0.1', () => resolve(attacker.address().port));
    });
  }

  const attackPage = (target) => `<!DOCTYPE html><title>win a prize</title>
<iframe name="sink"></iframe>
<form id="form" method="POST" action="${target}/api/azure-ops/cancel" target="sink"><input name="x" value="1"></form>
<script>
window.results = {};
async function attempt(name, run) {
  try { window.results[name] = await run(); } catch (e) { window.results[name] = 'blocked: ' + e.name; }
}
window.attack = async function () {
  const cancel = '${target}/api/azure-ops/cancel';
  await attempt('cors', async () => { const r = await fetch(cancel, { method: 'POST' }); return 'read ' + r.status; });
  await attempt('noCors', async () => (await fetch(cancel, { method: 'POST', mode: 'no-cors' })).type);
  await attempt('guessedToken', async () => {
    const r = await fetch(cancel, { method: 'POST', headers: { 'X-Azops-Token': '0'.repeat(48) } });
    return 'read ' + r.status;
  });
  await attempt('readPage', async () => (await (await fetch('${target}/')).text()).slice(0, 200));
  await attempt('readStatus', async () => (await (await fetch('${target}/api/azure-ops-status')).text()).slice(0, 200));
  document.getElementById('form').submit();
  return window.results;
};
</script>`;

  for (const attackerHost of ['127.0.0.1', 'localhost', 'evil.example']) {
    test(`a page from http://${attackerHost}:OTHER cannot stop the task or read its token`, { timeout: 30000 }, async () => {
      const run = await liveRun();
      const otherPort = await serveAttackPage(attackPage(run.origin));
      const page = await browser.context.newPage();
      const sent = await recordRequests(page, `${run.origin}/api/azure-ops/cancel`);
      await page.goto(`http://${attackerHost}:${otherPort}/`);
      const results = await page.evaluate(() => window.attack());

      // Chromium did send the POSTs (fetch, no-cors fetch, form), and the server refused each.
      const answered = () => sent().filter((r) => r.method === 'POST' && r.status !== null);
      await waitFor(() => answered().length >= 3,
        { what: `three answered POSTs to the cancel address; saw ${JSON.stringify(sent())}` });
      const origin = `http://${attackerHost}:${otherPort}`;
      for (const r of answered()) {
        assert.equal(r.headers.origin, origin, `Chromium names the page's origin: ${JSON.stringify(r)}`);
        assert.equal(r.headers['x-azops-token'], undefined);
        assert.equal(r.status, 403);
      }
      // The guessed-token fetch needs a preflight, which the server does not grant: its POST never leaves.
      const preflights = sent().filter((r) => r.method === 'OPTIONS');
      assert.equal(preflights.length, 1, JSON.stringify(sent()));
      assert.equal(preflights[0].headers.origin, origin);
      assert.ok(preflights[0].status >= 400, `preflight answered ${preflights[0].status}`);
      const withToken = sent().filter((r) => r.method === 'POST' && 'x-azops-token' in r.asked);
      assert.equal(withToken.length, 1);
      assert.equal(withToken[0].headers, null, 'the POST carrying a token header was never sent');
      assert.match(results.cors, /^blocked/, 'the answer is not readable across origins');
      assert.equal(results.noCors, 'opaque');
      assert.match(results.guessedToken, /^blocked/, 'a custom header needs a preflight, which the server does not grant');
      assert.match(results.readPage, /^blocked/, 'the page with the token is not readable across origins');
      assert.match(results.readStatus, /^blocked/);
      assert.ok(!JSON.stringify(results).includes(run.token));
      await assertStillRunning(run, 'a page of another origin tried to stop it');
      await page.close();

      // Control: the same task stops at once for a same-origin request with the token.
      assert.equal((await cancel(run, { 'X-Azops-Token': run.token, Origin: run.origin })).status, 202);
      await waitFor(() => processGone(run.pid), { timeoutMs: 10000, what: `the child ${run.pid} to be gone` });
    });
  }

  test('after a DNS rebinding, http://evil.example:PORT/ gets neither the page nor the status', { timeout: 30000 }, async () => {
    const run = await liveRun();
    const page = await browser.context.newPage();
    const rebound = `http://evil.example:${run.port}`;
    const answer = await page.goto(`${rebound}/`);
    assert.equal(answer.status(), 403);
    assert.ok(!(await answer.text()).includes(run.token));
    assert.equal(await page.$('meta[name="azops-token"]'), null);
    const fromThere = await page.evaluate(async (base) => {
      const status = await fetch(`${base}/api/azure-ops-status`);
      const stop = await fetch(`${base}/api/azure-ops/cancel`, { method: 'POST' });
      return [status.status, stop.status];
    }, rebound);
    assert.deepEqual(fromThere, [403, 403], 'same-origin requests from the rebound name are refused too');
    await assertStillRunning(run, 'requests from a rebound name');
    await page.close();
  });
});
