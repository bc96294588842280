// How long a line the command prints takes to appear on the dashboard, from the real `azops run` to
// the DOM of pages in headless Chromium, over Server-Sent Events and over the 2 s polling the page
// falls back to (the original design's only transport). The pages share one Chromium, five to a
// browser context: Chromium opens at most 6 HTTP/1.1 connections to one host per context, and every
// page's event stream holds one, so a sixth stream would leave no connection for anything else.
//
// The command is a node script that prints `marker <n> <Date.now()>` every INTERVAL ms once all pages
// are connected. In each page a MutationObserver, installed before the page's own script, notes
// performance.timeOrigin + performance.now() when the marker's line is added to the log; a listener
// on the event stream notes when the event carrying the line arrived, which tells the share of the
// server and the browser's network from the page's. Latency = that time − the time in the line.
// (Not the next animation frame: headless Chromium does not pace frames of many pages as a display
// does, so frame times there say nothing of the page.)
//
//   cd tests/browser && npm ci && cd ../..
//   AZOPS_BIN=build/bin/azops node bench/dashboard_latency.mjs [--markers 40] [--interval 300] [--pages 1,50]
//
// AZOPS_CHROMIUM: the browser (default /usr/bin/chromium). Prints a table; exits 1 when SSE with the
// most pages misses the target (p95 ≤ 100 ms), so a script can tell.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { CHROMIUM, launchChromium } from '../tests/browser/browser.mjs';
import { AzopsProcess, waitFor } from '../tests/browser/azops_process.mjs';

const { values: opts } = parseArgs({
  options: {
    markers: { type: 'string', default: '40' },
    interval: { type: 'string', default: '300' },
    pages: { type: 'string', default: '1,50' },
    modes: { type: 'string', default: 'sse,poll' },
    'target-ms': { type: 'string', default: '100' },
  },
});
const MARKERS = Number(opts.markers);
const INTERVAL_MS = Number(opts.interval);
const PAGE_COUNTS = opts.pages.split(',').map(Number);
const MODES = opts.modes.split(',');
const TARGET_MS = Number(opts['target-ms']);
const PAGES_PER_CONTEXT = 5;

// Waits for "go" on the FIFO, then prints the markers, then idles until azops stops it.
const CHILD = `
const fs = require('fs');
const [fifo, count, interval] = process.argv.slice(1);
process.stdout.write('bench child ready\\n');
fs.readFileSync(fifo);
let n = 0;
const timer = setInterval(() => {
  n += 1;
  process.stdout.write('marker ' + n + ' ' + Date.now() + '\\n');
  if (n >= Number(count)) { clearInterval(timer); setInterval(() => {}, 1 << 30); }
}, Number(interval));
`;

// Runs in every page before its own script.
function observeMarkers() {
  window.__markers = [];
  window.__arrived = {};
  const now = () => performance.timeOrigin + performance.now();
  if (window.EventSource) {
    const Original = window.EventSource;
    window.EventSource = class extends Original {
      constructor(...args) {
        super(...args);
        this.addEventListener('status', (ev) => {
          const t = now();
          for (const m of ev.data.matchAll(/marker (\d+) \d+/g)) if (!(m[1] in window.__arrived)) window.__arrived[m[1]] = t;
        });
      }
    };
  }
  new MutationObserver((records) => {
    const seen = now();
    const note = (line) => {
      const match = /^marker (\d+) (\d+)$/.exec(line.textContent || '');
      if (!match) return;
      window.__markers.push({ n: Number(match[1]), sent: Number(match[2]), dom: seen });
    };
    // Log lines live in blocks under #log: a line added to a block, or a block added with its lines
    // (or, in pages before the blocks, a line added to #log itself).
    for (const record of records) {
      const target = record.target;
      if (target.id === 'log') {
        for (const node of record.addedNodes) {
          if (node.children && node.children.length) for (const line of node.children) note(line);
          else note(node);
        }
      } else if (target.parentNode && target.parentNode.id === 'log') {
        for (const line of record.addedNodes) note(line);
      }
    }
  }).observe(document, { childList: true, subtree: true });
}

const noEventSource = () => { delete window.EventSource; };

function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function measure(browser, mode, pageCount) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'azops-latency-'));
  const fifo = path.join(dir, 'go.fifo');
  execFileSync('mkfifo', [fifo]);
  const azops = new AzopsProcess(['run', '--no-open', '--port', '0', '--status-file', path.join(dir, 's.json'),
    '--task', 'latency', '--', process.execPath, '-e', CHILD, fifo, String(MARKERS), String(INTERVAL_MS)], { cwd: dir });
  const contexts = [];
  const pages = [];
  try {
    const url = await azops.url();
    await azops.waitForOutput(/^bench child ready$/m);
    const connected = mode === 'sse' ? 'live' : 'polling';
    for (let i = 0; i < pageCount; i += PAGES_PER_CONTEXT) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, locale: 'en-US', timezoneId: 'UTC' });
      contexts.push(context);
      await context.addInitScript(observeMarkers);
      if (mode === 'poll') await context.addInitScript(noEventSource);
      await Promise.all(Array.from({ length: Math.min(PAGES_PER_CONTEXT, pageCount - i) }, async () => {
        const page = await context.newPage();
        pages.push(page);
        await page.goto(url);
        await page.waitForFunction((c) => document.querySelector('#conn').classList.contains(c) &&
          document.querySelector('#log').textContent.includes('bench child ready'), connected, { timeout: 20000 });
      }));
    }
    await fs.promises.writeFile(fifo, 'go\n');
    // The last marker, then one polling period and a margin for the slowest page.
    await azops.waitForOutput(new RegExp(`^marker ${MARKERS} \\d+$`, 'm'), MARKERS * INTERVAL_MS + 10000);
    const settle = mode === 'poll' ? 2000 + 1500 : 1500;
    await waitFor(async () => {
      const counts = await Promise.all(pages.map((p) => p.evaluate(() => window.__markers.length)));
      return counts.every((c) => c >= MARKERS);
    }, { timeoutMs: settle, intervalMs: 100 }).catch(() => { /* counted as missed below */ });
    const dom = [];
    const arrived = [];
    let missed = 0;
    for (const page of pages) {
      const [entries, arrivals] = await page.evaluate(() => [window.__markers, window.__arrived]);
      const byN = new Map(entries.map((e) => [e.n, e]));
      for (let n = 1; n <= MARKERS; n++) {
        const e = byN.get(n);
        if (!e) { missed += 1; continue; }
        dom.push(e.dom - e.sent);
        if (arrivals[n] !== undefined) arrived.push(arrivals[n] - e.sent);
      }
    }
    for (const list of [dom, arrived]) list.sort((a, b) => a - b);
    return { mode, pageCount, samples: dom.length, missed, dom, arrived };
  } finally {
    await Promise.all(contexts.map((c) => c.close()));
    await azops.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (v) => (Number.isFinite(v) ? v.toFixed(0) : '—');
const pad = (v, n) => String(v).padStart(n);

async function main() {
  if (!process.env.AZOPS_BIN) throw new Error('set AZOPS_BIN to the built azops binary');
  const chromiumVersion = execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  console.log(`azops dashboard latency: the command prints a line → the line is in the page's DOM`);
  console.log(`${MARKERS} markers every ${INTERVAL_MS} ms; ${os.cpus().length} CPUs; ${chromiumVersion}; node ${process.version}`);
  console.log('');
  const { browser, close } = await launchChromium();
  const rows = [];
  try {
    for (const mode of MODES) {
      for (const count of PAGE_COUNTS) {
        const r = await measure(browser, mode, count);
        rows.push(r);
        process.stderr.write(`  done: ${mode} × ${count} page(s)\n`);
      }
    }
  } finally {
    await close();
  }
  const head = ['transport', 'pages', 'samples', 'missed', 'event p50', 'event p95', 'DOM p50', 'DOM p95', 'DOM max'];
  const widths = [17, 5, 7, 6, 9, 9, 8, 8, 8];
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : pad(c, widths[i]))).join('  ');
  console.log(line(head));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) {
    console.log(line([r.mode === 'sse' ? 'SSE (push)' : 'polling every 2 s', r.pageCount, r.samples, r.missed,
      fmt(percentile(r.arrived, 50)), fmt(percentile(r.arrived, 95)), fmt(percentile(r.dom, 50)),
      fmt(percentile(r.dom, 95)), fmt(r.dom[r.dom.length - 1])]));
  }
  console.log('(milliseconds from the command writing the line; event: the stream event carrying it reached');
  console.log(' the page; DOM: the line was added to the log)');
  const most = rows.filter((r) => r.mode === 'sse').sort((a, b) => b.pageCount - a.pageCount)[0];
  if (!most) return 0;
  const p95 = percentile(most.dom, 95);
  const met = most.missed === 0 && p95 <= TARGET_MS;
  console.log(`target: SSE with ${most.pageCount} pages, p95 ≤ ${TARGET_MS} ms and nothing missed: ${met ? 'met' : 'MISSED'} (p95 ${fmt(p95)} ms)`);
  return met ? 0 : 1;
}

main().then((code) => process.exit(code), (error) => {
  console.error(error);
  process.exit(2);
});
