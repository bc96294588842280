// The dashboard in headless Chromium against the real server: `azops run` (the page served by the
// process that runs the command) and `azops serve` (the page for a status file another process writes).
//
//   cd tests/browser && npm ci
//   AZOPS_BIN=build/.../azops node --test --test-concurrency=1 dashboard.test.mjs security.test.mjs
//
// AZOPS_ARTIFACT_DIR: where the mid-run screenshot goes (default: AZOPS_BUILD_DIR, else the folder of
// AZOPS_BIN). AZOPS_CHROMIUM: the browser (default /usr/bin/chromium).
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { launchBrowser } from './browser.mjs';
import { AZOPS_BIN, Cleanup, groupGone, processGone, waitFor, writeStatusFile } from './azops_process.mjs';
import { fixture } from './status_fixtures.mjs';

const ARTIFACT_DIR = process.env.AZOPS_ARTIFACT_DIR || process.env.AZOPS_BUILD_DIR ||
  (AZOPS_BIN ? path.dirname(path.resolve(AZOPS_BIN)) : process.cwd());

let browser;
const cleanup = new Cleanup();

before(async () => {
  assert.ok(AZOPS_BIN, 'set AZOPS_BIN to the built azops binary');
  browser = await launchBrowser({ width: 1366, height: 768 });
});
after(async () => {
  await cleanup.run();
  if (browser) await browser.close();
});
afterEach(() => cleanup.run());

// A page on `url` that records script errors and any request leaving the server's origin.
async function openPage(url, { initScript } = {}) {
  const page = await browser.context.newPage();
  const problems = [];
  const origin = new URL(url).origin;
  page.on('pageerror', (error) => problems.push(`script error: ${error.message}`));
  page.on('request', (request) => {
    const target = request.url();
    if (!target.startsWith(origin + '/') && !target.startsWith('data:')) problems.push(`request to another origin: ${target}`);
  });
  if (initScript) await page.addInitScript(initScript);
  await page.goto(url);
  return {
    page,
    async close() {
      await page.close();
      assert.deepEqual(problems, [], 'the page must run without errors and fetch nothing from elsewhere');
    },
  };
}

// `azops run` serving its own dashboard, running `sh -c script`.
async function liveRun(script, { task = 'demo', extra = [] } = {}) {
  const dir = cleanup.dir('azops-browser-');
  const statusFile = path.join(dir, 's.json');
  const proc = cleanup.azops(['run', '--no-open', '--port', '0', '--status-file', statusFile, '--task', task, ...extra,
    '--', 'sh', '-c', script], { cwd: dir });
  const url = await proc.url();
  const pid = Number((await proc.waitForOutput(/^pid (\d+)$/m))[1]);
  cleanup.group(pid);
  return { dir, statusFile, proc, url, pid };
}

// A child that prints its pid, then copies every line written to `fifo` to its output.
function fifoChild(fifo, before = '') {
  return `echo "pid $$"; ${before} while :; do cat '${fifo}'; done`;
}
function makeFifo(dir) {
  const fifo = path.join(dir, 'input.fifo');
  execFileSync('mkfifo', [fifo]);
  return fifo;
}
async function feed(fifo, text) {
  await fs.promises.writeFile(fifo, text);
}

// Whole seconds and a Z, as the status writer writes them.
const isoNow = (offsetMs = 0) => new Date(Date.now() + offsetMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
const text = (page, selector) => page.textContent(selector);
const getJson = async (base, what) => (await fetch(new URL(what, base))).json();
const logText = (page) => page.evaluate(() => Array.from(document.querySelectorAll('#log .chunk > div'), (d) => d.textContent));

describe('a live azops run', () => {
  test('every panel renders what the server serves', { timeout: 30000 }, async () => {
    const run = await liveRun('echo "pid $$"; echo "Step 1/4 : FROM debian:bookworm-slim"; echo "hello from the child"; while :; do sleep 1; done',
      { extra: ['--operation', 'docker_build', '--vm-size', 'Standard_D8ds_v5'] });
    const { page, close } = await openPage(run.url);
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#log .chunk > div')).some((d) => d.textContent === 'hello from the child'));
    const s = await getJson(run.url, 'api/azure-ops-status');
    assert.equal(s.schema, 'azops.status/1');
    assert.equal(await text(page, '#task'), 'demo');
    assert.equal(await text(page, '#state'), 'running');
    assert.equal(await text(page, '#operation'), 'docker_build');
    assert.equal(await text(page, '#phase'), s.phase.replace(/_/g, ' '));
    assert.match(await text(page, '#started'), /^\d\d:\d\d$/);
    assert.match(await text(page, '#elapsed'), /^\d+(s|m \d\ds|h \d\dm)$/);
    assert.equal(await text(page, '#step'), 'step 1 of 4');
    assert.equal(await text(page, '#detail'), 'FROM debian:bookworm-slim');
    assert.match(await text(page, '#pct'), /^\d+(\.\d)?%$/);
    assert.equal(await page.getAttribute('#bar', 'aria-valuenow'), String(Math.round(s.progress_pct)));
    assert.notEqual((await text(page, '#eta')).trim(), '');
    assert.equal(s.rate_known, true, 'Standard_D8ds_v5 has a built-in rate');
    assert.match(await text(page, '#cost'), /^(\$\d+\.\d\d|<\$0\.01)$/);
    assert.equal(await text(page, '#rate'), `$${s.hourly_rate_usd.toFixed(3)}/h`);
    assert.equal(await text(page, '#vm-size'), 'Standard_D8ds_v5');
    assert.notEqual((await text(page, '#vm-state')).trim(), '');
    const timeline = await page.$$eval('#timeline li .tl-name', (names) => names.map((n) => n.textContent));
    assert.deepEqual(timeline, s.timeline.map((e) => e.name.replace(/_/g, ' ')));
    assert.equal(await text(page, '#status-file'), path.resolve(run.statusFile));
    assert.equal(await text(page, '#line-count'), '3 lines');
    assert.match(await page.getAttribute('#conn', 'class'), /\blive\b/);
    assert.equal(await page.isEnabled('#stop'), true, 'a running task served by its own process can be stopped');
    assert.equal(await page.getAttribute('#vnc', 'aria-disabled'), 'true', 'no vnc_url, no VNC button');
    assert.match(await page.title(), /^\d+% docker_build — azops$/);
    await close();
  });

  test('progress, ETA and a new log line appear within 1 s of the child printing', { timeout: 30000 }, async () => {
    const dir = cleanup.dir('azops-fifo-');
    const fifo = makeFifo(dir);
    const run = await liveRun(fifoChild(fifo, 'echo "Step 1/4 : FROM debian:bookworm-slim";'),
      { extra: ['--operation', 'docker_build', '--vm-size', 'Standard_D8ds_v5'] });
    const { page, close } = await openPage(run.url);
    await page.waitForFunction(() => document.querySelector('#step').textContent === 'step 1 of 4');
    assert.equal(await text(page, '#pct'), '0%');
    assert.equal(await text(page, '#eta'), 'no estimate yet');
    const started = Date.now();
    await feed(fifo, 'Step 2/4 : RUN apt-get update\n');
    await page.waitForFunction(() => document.querySelector('#pct').textContent === '25%' &&
      document.querySelector('#step').textContent === 'step 2 of 4' &&
      document.querySelector('#eta').textContent !== 'no estimate yet' &&
      document.querySelector('#log .chunk:last-child > div:last-child')?.textContent === 'Step 2/4 : RUN apt-get update',
    null, { timeout: 1000, polling: 20 });
    assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
    const s = await getJson(run.url, 'api/azure-ops-status');
    assert.equal(typeof s.eta_seconds, 'number', 'the writer has an estimate from progress by now');
    assert.match(await text(page, '#eta'), /^(≈ .+ left|any moment \(past the estimate\))$/);
    await close();
  });

  test('a new log line appears within 1 s', { timeout: 30000 }, async () => {
    const dir = cleanup.dir('azops-fifo-');
    const fifo = makeFifo(dir);
    const run = await liveRun(fifoChild(fifo));
    const { page, close } = await openPage(run.url);
    await page.waitForFunction(() => document.querySelector('#conn').classList.contains('live'));
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#log .chunk > div')).some((d) => /^pid \d+$/.test(d.textContent)));
    for (const marker of ['first-marker', 'second-marker']) {
      const started = Date.now();
      await feed(fifo, `${marker}\n`);
      await page.waitForFunction((m) => Array.from(document.querySelectorAll('#log .chunk > div')).some((d) => d.textContent === m),
        marker, { timeout: 1000, polling: 20 });
      assert.ok(Date.now() - started < 1000, `${marker} took ${Date.now() - started} ms`);
    }
    await close();
  });

  test('following pauses when scrolled up, counts new lines and jumps to them', { timeout: 30000 }, async () => {
    const dir = cleanup.dir('azops-fifo-');
    const fifo = makeFifo(dir);
    const run = await liveRun(fifoChild(fifo, 'i=1; while [ $i -le 120 ]; do echo "boot line $i"; i=$((i+1)); done;'));
    const { page, close } = await openPage(run.url);
    await page.waitForFunction(() => document.querySelector('#log .chunk:last-child > div:last-child')?.textContent === 'boot line 120');
    assert.equal(await text(page, '#follow'), 'following the end');
    assert.ok(await page.$eval('#log', (l) => l.scrollHeight > l.clientHeight + 100), 'the log must overflow for this test');
    assert.ok(await page.$eval('#log', (l) => l.scrollHeight - l.scrollTop - l.clientHeight < 6), 'it starts at the end');

    const box = await page.locator('#log').boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.wheel(0, -400);
    await page.waitForFunction(() => document.querySelector('#follow').textContent.includes('paused'));
    assert.equal(await page.isVisible('#jump'), true);
    const scrolledTo = await page.$eval('#log', (l) => l.scrollTop);

    await feed(fifo, 'late 1\nlate 2\nlate 3\n');
    await page.waitForFunction(() => document.querySelector('#jump').textContent === 'Jump to latest (3 new)', null, { timeout: 3000 });
    assert.equal(await page.$eval('#log', (l) => l.scrollTop), scrolledTo, 'new lines must not move a paused view');
    assert.equal(await page.$eval('#log .chunk:last-child > div:last-child', (d) => d.textContent), 'late 3');

    await page.click('#jump');
    await page.waitForFunction(() => document.querySelector('#follow').textContent === 'following the end');
    assert.equal(await page.isVisible('#jump'), false);
    assert.ok(await page.$eval('#log', (l) => l.scrollHeight - l.scrollTop - l.clientHeight < 6), 'jump goes to the end');

    await feed(fifo, 'later 4\n');
    await page.waitForFunction(() => document.querySelector('#log .chunk:last-child > div:last-child')?.textContent === 'later 4');
    assert.ok(await page.$eval('#log', (l) => l.scrollHeight - l.scrollTop - l.clientHeight < 6), 'following again');
    await close();
  });

  test('Stop, confirmed in the dialog, kills the child and the page shows cancelled', { timeout: 30000 }, async () => {
    const run = await liveRun('echo "pid $$"; while :; do sleep 1; done');
    const { page, close } = await openPage(run.url);
    await page.waitForFunction(() => !document.querySelector('#stop').disabled);

    await page.click('#stop');
    assert.equal(await page.isVisible('#modal'), true);
    await page.click('#stop-cancel');
    assert.equal(await page.isVisible('#modal'), false);
    assert.equal(processGone(run.pid), false, 'dismissing the dialog must not stop anything');

    await page.click('#stop');
    await page.click('#stop-confirm');
    await waitFor(() => processGone(run.pid), { timeoutMs: 10000, what: `the child ${run.pid} to be gone` });
    await waitFor(() => groupGone(run.pid), { what: 'what the child started (its `sleep`) to be gone too' });
    await page.waitForFunction(() => document.querySelector('#state').textContent === 'cancelled', null, { timeout: 10000 });
    assert.equal(await page.isVisible('#final'), true);
    assert.match(await text(page, '#final'), /Cancelled/);
    assert.equal(await page.isEnabled('#stop'), false);
    assert.equal(await run.proc.exited, 128 + 15, 'azops exits as its child did: killed by SIGTERM');
    assert.equal(JSON.parse(fs.readFileSync(run.statusFile, 'utf8')).state, 'cancelled');
    await close();
  });

  test('HTML in the log and the task name is shown as text, never run', { timeout: 30000 }, async () => {
    const run = await liveRun(
      'echo "pid $$"; echo \'<img src=x onerror=window.__pwned=1>\'; echo \'<script>window.__pwned=2</script>\'; echo "after the markup"; while :; do sleep 1; done',
      { task: '<b onmouseover=window.__pwned=3>task</b>' });
    const { page, close } = await openPage(run.url);
    await page.waitForFunction(() => document.querySelector('#log .chunk:last-child > div:last-child')?.textContent === 'after the markup');
    await page.hover('#task');
    // Control: the same markup parsed as HTML does run under the page's policy, and its error event
    // comes after any the log's line would have raised, so nothing pending is missed below.
    await page.evaluate(() => document.body.insertAdjacentHTML('beforeend', '<img src=x onerror=window.__control=1 hidden>'));
    await page.waitForFunction(() => window.__control === 1);
    assert.equal(await page.evaluate(() => window.__pwned), undefined, 'markup from the child or the task name ran');
    assert.equal(await page.$$eval('#log img, #log script, #task b', (nodes) => nodes.length), 0);
    const lines = await logText(page);
    assert.ok(lines.includes('<img src=x onerror=window.__pwned=1>'), `log: ${lines}`);
    assert.ok(lines.includes('<script>window.__pwned=2</script>'), `log: ${lines}`);
    assert.equal(await text(page, '#task'), '<b onmouseover=window.__pwned=3>task</b>');
    await close();
  });

  test('a screenshot mid-run', { timeout: 30000 }, async () => {
    const run = await liveRun([
      'echo "pid $$"',
      'echo "Step 1/4 : FROM debian:bookworm-slim"', 'echo " ---> 4c3b2a190d7e"',
      'echo "Step 2/4 : RUN apt-get update && apt-get install -y --no-install-recommends qemu-utils"',
      'echo " ---> Running in 0f1e2d3c4b5a"', 'echo "Reading package lists..."',
      'while :; do sleep 1; done',
    ].join('; '), { task: 'setup-waa', extra: ['--operation', 'docker_build', '--vm-size', 'Standard_D8ds_v5'] });
    const { page, close } = await openPage(run.url);
    await page.waitForFunction(() => document.querySelector('#log .chunk:last-child > div:last-child')?.textContent === 'Reading package lists...');
    // A second of running, so that elapsed time, ETA and cost have something to show.
    await page.waitForFunction(() => document.querySelector('#elapsed').textContent !== '0s', null, { timeout: 15000 });
    fs.mkdirSync(ARTIFACT_DIR, { recursive: true });
    const file = path.join(ARTIFACT_DIR, 'dashboard-midrun.png');
    await page.screenshot({ path: file });
    const head = fs.readFileSync(file).subarray(0, 8);
    assert.deepEqual([...head], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${file} must be a PNG`);
    await close();
  });
});

describe('azops serve, for a file another process writes', () => {
  async function serve(statusFile) {
    const proc = cleanup.azops(['serve', '--no-open', '--port', '0', '--status-file', statusFile]);
    return proc.url();
  }
  function statusIn(file, kind, changes = {}) {
    return { ...fixture(kind), status_file: file, ...changes };
  }

  test('the stale banner appears when the writer is killed with SIGKILL', { timeout: 40000 }, async () => {
    const dir = cleanup.dir('azops-stale-');
    const statusFile = path.join(dir, 's.json');
    const writer = cleanup.azops(['run', '--no-open', '--no-serve', '--status-file', statusFile, '--task', 'demo',
      '--', 'sh', '-c', 'echo "pid $$"; while :; do sleep 1; done'], { cwd: dir });
    const child = Number((await writer.waitForOutput(/^pid (\d+)$/m))[1]);
    cleanup.group(child);
    await waitFor(() => fs.existsSync(statusFile), { what: 'the writer to write its status file' });
    const { page, close } = await openPage(await serve(statusFile));
    await page.waitForFunction(() => document.querySelector('#state').textContent === 'running');
    assert.equal(await page.isVisible('#stale'), false);

    writer.child.kill('SIGKILL');
    await writer.exited;
    process.kill(-child, 'SIGKILL');  // the writer can no longer stop its child
    await page.waitForSelector('#stale', { state: 'visible', timeout: 15000 });
    assert.match(await text(page, '#stale'), /No heartbeat for \d+s\..*writer is gone or not updating since/);
    assert.match(await page.title(), /^stale: /);
    await close();
  });

  test('progress, ETA, cost and a new log line each appear within 1 s of the file changing', { timeout: 30000 }, async () => {
    const dir = cleanup.dir('azops-serve-');
    const file = path.join(dir, 's.json');
    let status = statusIn(file, 'running', { progress_pct: 12.5 });
    writeStatusFile(file, status);
    const { page, close } = await openPage(await serve(file));
    await page.waitForFunction(() => document.querySelector('#pct').textContent === '12%');
    assert.equal(await text(page, '#eta'), '≈ 26 min left');
    assert.equal(await text(page, '#cost'), '$0.15');

    const within1s = async (changes, check, arg) => {
      status = { ...status, ...changes, updated_at: isoNow() };
      const started = Date.now();
      writeStatusFile(file, status);
      await page.waitForFunction(check, arg, { timeout: 1000, polling: 20 });
      const took = Date.now() - started;
      assert.ok(took < 1000, `${Object.keys(changes)} took ${took} ms`);
    };
    await within1s({ progress_pct: 57.25 }, () => document.querySelector('#pct').textContent === '57%');
    assert.equal(await page.getAttribute('#bar', 'aria-valuenow'), '57');
    assert.match(await page.title(), /^57% docker_build — azops$/);

    await within1s({ eta_seconds: 3 * 3600 + 5 * 60, eta_low_seconds: 2 * 3600, eta_high_seconds: 4 * 3600 },
      () => document.querySelector('#eta').textContent === '≈ 3h 05m left');
    assert.match(await text(page, '#eta-sub'), /^range 2h 00m–4h 00m · done ≈ \d\d:\d\d · from past runs and progress$/);

    await within1s({ cost_usd: 1.234, projected_cost_usd: 2.5 }, () => document.querySelector('#cost').textContent === '$1.23');
    assert.equal(await text(page, '#projected'), '~$2.50 total');
    await within1s({ cost_usd: 0.001, projected_cost_usd: 0.004 }, () => document.querySelector('#cost').textContent === '<$0.01');
    assert.equal(await text(page, '#projected'), '<$0.01 total');

    await within1s({ log_tail: [...status.log_tail, 'a brand new line'].slice(-50) },
      () => document.querySelector('#log .chunk:last-child > div:last-child')?.textContent === 'a brand new line');
    await close();
  });

  test('events that come while the page is busy are drawn once, the newest, not one by one', { timeout: 30000 }, async () => {
    const dir = cleanup.dir('azops-serve-');
    const file = path.join(dir, 's.json');
    let status = statusIn(file, 'running', { log_tail: ['line 0'] });
    writeStatusFile(file, status);
    const { page, close } = await openPage(await serve(file));
    await page.waitForFunction(() => document.querySelector('#log .chunk:last-child > div:last-child')?.textContent === 'line 0');
    await page.evaluate(() => {
      window.logDraws = 0;
      new MutationObserver(() => { window.logDraws += 1; }).observe(document.querySelector('#log'), { childList: true, subtree: true });
    });
    // The page's thread is busy for 3 s while the file changes 15 times (the server looks every 100 ms).
    const busy = page.evaluate(() => { const end = Date.now() + 3000; while (Date.now() < end); });
    for (let n = 1; n <= 15; n++) {
      status = { ...status, log_tail: [...status.log_tail, `line ${n}`], updated_at: isoNow() };
      writeStatusFile(file, status);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    await busy;
    await page.waitForFunction(() => document.querySelector('#log .chunk:last-child > div:last-child')?.textContent === 'line 15');
    assert.deepEqual(await logText(page), Array.from({ length: 16 }, (_, n) => `line ${n}`));
    const draws = await page.evaluate(() => window.logDraws);
    assert.ok(draws <= 3, `the log was drawn ${draws} times for 15 events that waited`);
    await close();
  });

  test('Stop on a page served for another process\'s file stops that process\'s child', { timeout: 30000 }, async () => {
    const dir = cleanup.dir('azops-serve-stop-');
    const statusFile = path.join(dir, 's.json');
    const writer = cleanup.azops(['run', '--no-open', '--no-serve', '--status-file', statusFile, '--task', 'demo',
      '--', 'sh', '-c', 'echo "pid $$"; while :; do sleep 1; done'], { cwd: dir });
    const child = Number((await writer.waitForOutput(/^pid (\d+)$/m))[1]);
    cleanup.group(child);
    await waitFor(() => fs.existsSync(`${statusFile}.token`), { what: 'the writer to write its run token' });
    const { page, close } = await openPage(await serve(statusFile));
    await page.waitForFunction(() => !document.querySelector('#stop').disabled);
    await page.click('#stop');
    await page.click('#stop-confirm');
    await waitFor(() => processGone(child), { timeoutMs: 10000, what: `the writer's child ${child} to be gone` });
    await page.waitForFunction(() => document.querySelector('#state').textContent === 'cancelled', null, { timeout: 10000 });
    assert.match(await text(page, '#final'), /^Cancelled\./);
    assert.equal(await writer.exited, 128 + 15);
    assert.equal(fs.existsSync(`${statusFile}.cancel`), false, 'the writer took the request away');
    await close();
  });

  test('each new tail adds only the lines not shown yet, and the log keeps at most 5,000', { timeout: 30000 }, async () => {
    const dir = cleanup.dir('azops-serve-');
    const file = path.join(dir, 's.json');
    const lines = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}`);
    const base = statusIn(file, 'running', { log_tail: lines(1, 50) });
    writeStatusFile(file, base);
    const { page, close } = await openPage(await serve(file));
    await page.waitForFunction(() => document.querySelector('#log .chunk:last-child > div:last-child')?.textContent === 'line 50');
    writeStatusFile(file, { ...base, log_tail: lines(3, 52), updated_at: isoNow() });
    await page.waitForFunction(() => document.querySelector('#log .chunk:last-child > div:last-child')?.textContent === 'line 52');
    assert.deepEqual(await logText(page), lines(1, 52));

    // 120 more updates of 49 new lines each, fed straight to the page.
    const total = await page.evaluate((status) => {
      let last = 52;
      for (let k = 0; k < 120; k++) {
        const from = last;  // the last line shown starts the next tail
        const tail = [];
        for (let n = from; n < from + 50; n++) tail.push(`line ${n}`);
        last = from + 49;
        window.azopsPage.applyStatus({ ...status, log_tail: tail });
      }
      return last;
    }, { ...base, updated_at: isoNow(1000) });
    const shown = await logText(page);
    assert.equal(shown.length, 5000);
    assert.equal(shown[shown.length - 1], `line ${total}`);
    assert.equal(shown[0], `line ${total - 4999}`);
    assert.equal(new Set(shown).size, shown.length, 'no line twice');
    assert.equal(await text(page, '#line-count'), '5000 lines');

    // Scrolled up at the cap: old lines go, and the view keeps showing the same line.
    const topLine = () => page.evaluate(() => {
      const box = document.querySelector('#log').getBoundingClientRect();
      return document.elementFromPoint(box.left + 20, box.top + 30).textContent;
    });
    await page.$eval('#log', (l) => { l.scrollTop = l.scrollHeight / 2; });
    await page.waitForFunction(() => document.querySelector('#follow').textContent.includes('paused'));
    const before = await topLine();
    await page.evaluate(([status, from]) => {
      const tail = [];
      for (let n = from; n < from + 50; n++) tail.push(`line ${n}`);
      window.azopsPage.applyStatus({ ...status, log_tail: tail });
    }, [{ ...base, updated_at: isoNow(2000) }, total]);
    assert.equal((await logText(page))[0], `line ${total - 4999 + 49}`);
    assert.equal(await topLine(), before);
    assert.equal(await text(page, '#jump'), 'Jump to latest (49 new)');
    await close();
  });

  test('a line still being redrawn (log_partial) changes in place until the line that ends it', { timeout: 30000 }, async () => {
    const dir = cleanup.dir('azops-serve-');
    const file = path.join(dir, 's.json');
    const base = statusIn(file, 'running', { log_tail: ['Downloading Windows 11'] });
    writeStatusFile(file, base);
    const { page, close } = await openPage(await serve(file));
    await page.waitForFunction(() => document.querySelector('#log .chunk:last-child > div:last-child')?.textContent === 'Downloading Windows 11');
    const apply = (tail, partial, ms) => page.evaluate(([status]) => window.azopsPage.applyStatus(status),
      [{ ...base, log_tail: tail, log_partial: partial, updated_at: isoNow(ms) }]);
    await apply(['Downloading Windows 11', 'win11x64.iso 10%'], true, 1000);
    await apply(['Downloading Windows 11', 'win11x64.iso 20%'], true, 2000);
    await apply(['Downloading Windows 11', 'win11x64.iso 20%'], true, 3000);  // a heartbeat: nothing new
    assert.deepEqual(await logText(page), ['Downloading Windows 11', 'win11x64.iso 20%']);
    assert.equal(await text(page, '#line-count'), '2 lines');
    await apply(['Downloading Windows 11', 'win11x64.iso 100% in 58s', 'Booting'], false, 4000);
    assert.deepEqual(await logText(page), ['Downloading Windows 11', 'win11x64.iso 100% in 58s', 'Booting']);
    await apply(['Downloading Windows 11', 'win11x64.iso 100% in 58s', 'Booting', 'pip 5%'], true, 5000);
    await apply(['win11x64.iso 100% in 58s', 'Booting', 'pip 40%'], true, 6000);  // the ring dropped its oldest line
    assert.deepEqual(await logText(page), ['Downloading Windows 11', 'win11x64.iso 100% in 58s', 'Booting', 'pip 40%']);
    assert.equal(await text(page, '#line-count'), '4 lines');
    await close();
  });

  test('final states, stalled, notice and an unknown rate are clear', { timeout: 40000 }, async () => {
    const dir = cleanup.dir('azops-serve-');
    const file = path.join(dir, 's.json');
    writeStatusFile(file, statusIn(file, 'running'));
    const { page, close } = await openPage(await serve(file));
    await page.waitForFunction(() => document.querySelector('#state').textContent === 'running');
    const show = async (kind) => {
      const status = statusIn(file, kind);
      writeStatusFile(file, status);
      await page.waitForFunction((s) => document.querySelector('#state').textContent === s.state &&
        document.querySelector('#vm-size').textContent === s.vm_size && document.querySelector('#pct').textContent.startsWith(String(Math.floor(s.progress_pct))),
      status);
      return status;
    };

    await show('rate-unknown');
    assert.equal(await text(page, '#cost'), 'rate unknown');
    assert.equal(await text(page, '#rate'), 'unknown');
    assert.doesNotMatch(await page.textContent('section[aria-label=Cost]'), /\$0\.00/);
    assert.equal(await page.isVisible('#billing-note'), true);

    // A command on this machine, no VM at all: nothing priced, no warning about billing.
    writeStatusFile(file, statusIn(file, 'rate-unknown', { vm_size: null, vm_name: null, region: null,
      rate_source: 'no VM size given yet', progress_pct: 33 }));
    await page.waitForFunction(() => document.querySelector('#cost').textContent === 'no VM');
    assert.equal(await text(page, '#rate-source'), 'no VM size given: nothing is priced');
    assert.equal(await page.isVisible('#billing-note'), false);

    const stalled = await show('stalled');
    await page.waitForSelector('#stalled', { state: 'visible' });
    assert.match(await text(page, '#stalled'), /Stuck for 14 min\..*It has cost \$0\.1\d since then\./);
    assert.equal(await text(page, '#notice'), 'Note:' + stalled.notice);

    const failed = await show('failed');
    assert.equal(await page.getAttribute('#final', 'class'), 'banner fail');
    assert.ok((await text(page, '#final')).includes(failed.error));
    assert.equal(await page.isEnabled('#stop'), false);
    assert.equal(await page.isVisible('#stalled'), false);
    assert.match(await page.title(), /^failed: /);

    await show('cancelled');
    assert.equal(await page.getAttribute('#final', 'class'), 'banner off');
    assert.match(await text(page, '#final'), /^Cancelled\./);

    await show('succeeded');
    assert.equal(await page.getAttribute('#final', 'class'), 'banner ok');
    assert.equal(await text(page, '#pct'), '100%');

    await show('vnc');
    assert.equal(await page.getAttribute('#vnc', 'aria-disabled'), 'false');
    assert.equal(await page.getAttribute('#vnc', 'href'), 'http://127.0.0.1:8006/');
    assert.equal(await page.getAttribute('#vnc', 'target'), '_blank');
    assert.match(await page.getAttribute('#vnc', 'rel'), /\bnoopener\b/);
    await close();
  });

  test('the idle countdown runs on the writer\'s clock, and a benchmark shows its results so far', { timeout: 30000 }, async () => {
    const dir = cleanup.dir('azops-serve-');
    const file = path.join(dir, 's.json');
    // A simulation's clock is hours away from this browser's: the countdown must still say 14 min.
    const ended = statusIn(file, 'succeeded', { vm_state: 'running', updated_at: '2020-03-01T10:00:00Z',
      idle_deallocate_at: '2020-03-01T10:14:00Z' });
    writeStatusFile(file, ended);
    const { page, close } = await openPage(await serve(file));
    await page.waitForFunction(() => document.querySelector('#state').textContent === 'succeeded');
    assert.match(await text(page, '#vm-note'), /still allocated and billed at \$0\.\d{3}\/h\. Deallocates when idle at [^(]*\d\d:\d\d \(in 14 min\)\./);
    assert.equal(await page.isVisible('#results'), false);

    writeStatusFile(file, statusIn(file, 'running', { operation: 'benchmark', phase: 'running_task_5', step: 5,
      total_steps: 13, tasks_succeeded: 3, tasks_failed: 1 }));
    await page.waitForSelector('#results', { state: 'visible' });
    assert.equal(await text(page, '#step'), 'task 5 of 13');
    assert.equal(await text(page, '#passed'), '3 passed');
    assert.equal(await text(page, '#failed'), '1 failed');
    await close();
  });

  test('a missing status file is reported, and the page recovers when it appears', { timeout: 30000 }, async () => {
    const dir = cleanup.dir('azops-serve-');
    const file = path.join(dir, 'not-yet.json');
    const { page, close } = await openPage(await serve(file));
    await page.waitForSelector('#unavailable', { state: 'visible' });
    assert.ok((await text(page, '#unavailable')).includes(file));
    writeStatusFile(file, statusIn(file, 'running'));
    await page.waitForFunction(() => document.querySelector('#task').textContent === 'setup-waa');
    assert.equal(await page.isVisible('#unavailable'), false);
    await close();
  });

  test('without EventSource the page polls', { timeout: 30000 }, async () => {
    const dir = cleanup.dir('azops-serve-');
    const file = path.join(dir, 's.json');
    const status = statusIn(file, 'running', { progress_pct: 20 });
    writeStatusFile(file, status);
    const { page, close } = await openPage(await serve(file), { initScript: () => { delete window.EventSource; } });
    await page.waitForFunction(() => document.querySelector('#pct').textContent === '20%');
    assert.match(await page.getAttribute('#conn', 'class'), /\bpolling\b/);
    writeStatusFile(file, { ...status, progress_pct: 64, updated_at: isoNow() });
    await page.waitForFunction(() => document.querySelector('#pct').textContent === '64%', null, { timeout: 4000 });
    await close();
  });

  test('when the event stream is refused the page polls', { timeout: 30000 }, async () => {
    const dir = cleanup.dir('azops-serve-');
    const file = path.join(dir, 's.json');
    const status = statusIn(file, 'running', { progress_pct: 30 });
    writeStatusFile(file, status);
    // The stream's address answers 404 here, as a server at its stream cap answers 503: EventSource gives up.
    const refuseStream = () => {
      const Original = window.EventSource;
      window.EventSource = class extends Original {
        constructor(url, options) { super(String(url).replace('azure-ops-events', 'no-such-stream'), options); }
      };
    };
    const { page, close } = await openPage(await serve(file), { initScript: refuseStream });
    await page.waitForFunction(() => document.querySelector('#pct').textContent === '30%');
    await page.waitForFunction(() => document.querySelector('#conn').classList.contains('polling'));
    writeStatusFile(file, { ...status, progress_pct: 81, updated_at: isoNow() });
    await page.waitForFunction(() => document.querySelector('#pct').textContent === '81%', null, { timeout: 4000 });
    await close();
  });

  test('a hidden tab closes its event stream and a visible one reopens it', { timeout: 30000 }, async () => {
    const dir = cleanup.dir('azops-serve-');
    const file = path.join(dir, 's.json');
    writeStatusFile(file, statusIn(file, 'running'));
    const recordStreams = () => {
      const Original = window.EventSource;
      window.__streams = [];
      window.EventSource = class extends Original {
        constructor(...args) { super(...args); window.__streams.push(this); }
      };
    };
    const { page, close } = await openPage(await serve(file), { initScript: recordStreams });
    await page.waitForFunction(() => document.querySelector('#conn').classList.contains('live'));
    const setHidden = (hidden) => page.evaluate((h) => {
      Object.defineProperty(document, 'hidden', { value: h, configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    }, hidden);
    await setHidden(true);
    assert.deepEqual(await page.evaluate(() => window.__streams.map((s) => s.readyState)), [2]);
    assert.match(await page.getAttribute('#conn', 'class'), /\bpaused\b/);
    await setHidden(false);
    await page.waitForFunction(() => window.__streams.length === 2 && window.__streams[1].readyState === 1);
    await page.waitForFunction(() => document.querySelector('#conn').classList.contains('live'));
    await close();
  });
});
