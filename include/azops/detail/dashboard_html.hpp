// azops/detail/dashboard_html.hpp — the dashboard page, embedded.
// generated from web/azure_ops.html by tools/embed_web.py — do not edit.
//
// 48727 bytes in 4 raw-string pieces of at most 16000 bytes (MSVC's per-literal limit).
// Thread-safety: a constant. Errors: none.
// clang-format off
#pragma once

#include <string_view>

namespace azops::detail {

inline constexpr std::string_view dashboard_html =
R"azops_web(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="azops-token" content="__AZOPS_TOKEN__">
<title>azops</title>
<link rel="icon" id="favicon" href="data:,">
<style>
:root {
  --bg: #0d1117; --card: #161b22; --card2: #1c2330; --line: #2d3541; --text: #e6edf3; --muted: #8d96a0;
  --blue: #4493f8; --green: #3fb950; --red: #f85149; --amber: #d29922; --grey: #6e7681; --orange: #db6d28;
  --mono: ui-monospace, "DejaVu Sans Mono", "Cascadia Mono", Menlo, Consolas, "Liberation Mono", monospace;
  color-scheme: dark;
}
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; }
body {
  background: var(--bg); color: var(--text); display: flex; flex-direction: column; overflow: auto;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif;
}
[hidden] { display: none !important; }
code, .mono { font-family: var(--mono); font-size: 12.5px; }
.muted { color: var(--muted); }

/* header */
.top { padding: 10px 18px 8px; border-bottom: 1px solid var(--line); background: var(--card); }
.title-row { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
.brand { font-weight: 700; letter-spacing: .04em; color: var(--muted); font-size: 13px; text-transform: uppercase; }
h1 { margin: 0; font-size: 20px; font-weight: 650; overflow-wrap: anywhere; }
.spacer { flex: 1; }
.badge {
  display: inline-block; padding: 2px 10px; border-radius: 999px; font-size: 12px; font-weight: 650;
  text-transform: uppercase; letter-spacing: .04em; background: var(--grey); color: #fff; white-space: nowrap;
}
.badge.ok { background: #238636; } .badge.fail { background: #da3633; } .badge.run { background: #1f6feb; }
.badge.warn { background: #9e6a03; } .badge.off { background: #3d444d; color: #c9d1d9; } .badge.hot { background: #bd561d; }
.conn { font-size: 12.5px; color: var(--muted); white-space: nowrap; }
.conn::before { content: ""; display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 6px; background: var(--grey); vertical-align: 0; }
.conn.live::before { background: var(--green); box-shadow: 0 0 0 3px rgba(63,185,80,.2); }
.conn.polling::before { background: var(--amber); }
.conn.down::before { background: var(--red); }
.meta { display: flex; flex-wrap: wrap; gap: 4px 26px; margin: 6px 0 0; }
.meta div { display: flex; gap: 7px; align-items: baseline; min-width: 0; }
.meta dt { color: var(--muted); font-size: 12px; }
.meta dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }

/* banners */
#banners { padding: 0 18px; }
.banner { margin-top: 8px; padding: 7px 14px; border-radius: 6px; border: 1px solid; border-left-width: 5px; overflow-wrap: anywhere; }
.banner b { margin-right: 6px; }
.banner.fail { background: rgba(248,81,73,.12); border-color: var(--red); }
.banner.ok { background: rgba(63,185,80,.12); border-color: var(--green); }
.banner.warn { background: rgba(210,153,34,.13); border-color: var(--amber); }
.banner.info { background: rgba(68,147,248,.11); border-color: var(--blue); }
.banner.off { background: rgba(110,118,129,.16); border-color: var(--grey); }
.banner .err { display: block; margin-top: 4px; font-family: var(--mono); font-size: 12.5px; white-space: pre-wrap; }

/* layout */
main {
  flex: 1 0 430px; min-height: 0; display: grid; gap: 12px; padding: 12px 18px;
  grid-template-columns: minmax(0, 1fr) 340px; grid-template-rows: auto minmax(0, 1fr);
  grid-template-areas: "progress side" "log side";
}
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; min-width: 0; }
.card h2 { margin: 0 0 6px; font-size: 12px; font-weight: 650; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); display: flex; align-items: center; gap: 8px; }
.progress-card { grid-area: progress; }
.log-card { grid-area: log; display: flex; flex-direction: column; padding: 0; position: relative; min-height: 220px; }
.side { grid-area: side; display: flex; flex-direction: column; gap: 12px; min-height: 0; overflow: auto; }
footer { padding: 4px 18px 10px; color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
footer code { color: var(--text); }

/* progress */
.pct-row { display: flex; align-items: flex-end; justify-content: space-between; gap: 12px; flex-wrap: wrap; }
.pct { font-size: 34px; font-weight: 700; line-height: 1; font-variant-numeric: tabular-nums; }
.eta { text-align: right; }
.eta-main { font-size: 18px; font-weight: 650; font-variant-numeric: tabular-nums; }
.eta-sub { font-size: 12.5px; color: var(--muted); }
.bar { height: 14px; border-radius: 7px; background: #262d38; margin: 10px 0 8px; overflow: hidden; }
.fill { height: 100%; width: 0; border-radius: 7px; background: var(--blue); transition: width .4s ease; }
/* The stripes advance one step with each second the page ticks, not in a CSS animation: an animation
   redraws every frame for as long as the tab is open, which many open dashboards pay for in CPU. */
body[data-state=running] .fill {
  background-image: linear-gradient(45deg, rgba(255,255,255,.16) 25%, transparent 25%, transparent 50%, rgba(255,255,255,.16) 50%, rgba(255,255,255,.16) 75%, transparent 75%);
  background-size: 24px 24px;
}
body[data-stale] .fill { background-color: var(--amber); }
body[data-state=succeeded] .fill { background: var(--green); }
body[data-state=failed] .fill { background: var(--red); }
body[data-state=cancelled] .fill { background: var(--grey); }
@media (prefers-reduced-motion: reduce) { .fill { transition: none; } }
.step-row { display: flex; gap: 10px; align-items: baseline; min-width: 0; }
.step { font-weight: 650; white-space: nowrap; }
.results { white-space: nowrap; font-weight: 600; font-variant-numeric: tabular-nums; }
.results .ok { color: var(--green); } .results .bad { color: var(--red); }
.detail { font-family: var(--mono); font-size: 12.5px; color: #c9d1d9; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; min-width: 0; }

/* side panels */
.kv { display: grid; grid-template-columns: auto minmax(0, 1fr); gap: 3px 12px; margin: 0; }
.kv dt { color: var(--muted); font-size: 12.5px; }
.kv dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.big { font-size: 26px; font-weight: 700; font-variant-numeric: tabular-nums; line-height: 1.15; }
.big.unknown { font-size: 20px; color: var(--amber); }
.big-row { display: flex; align-items: baseline; gap: 8px; margin-bottom: 4px; }
.unit { color: var(--muted); font-size: 12.5px; }
.vm-name { margin-left: auto; text-transform: none; letter-spacing: 0; color: var(--text); font-size: 13px; font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.note { margin-top: 7px; font-size: 12px; color: var(--muted); }
.note.warn { color: var(--amber); }
.note.clip { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.note.hot { color: #f0883e; }
.actions { display: flex; gap: 8px; flex-wrap: wrap; }
.btn {
  font: inherit; font-weight: 600; padding: 7px 14px; border-radius: 6px; border: 1px solid var(--line);
  background: var(--card2); color: var(--text); cursor: pointer; text-decoration: none; display: inline-flex; align-items: center; gap: 6px;
}
.btn:hover:not(:disabled):not([aria-disabled=true]) { border-color: #8b949e; }
.btn:focus-visible { outline: 2px solid var(--blue); outline-offset: 2px; }
.btn:disabled, .btn[aria-disabled=true] { opacity: .45; cursor: not-allowed; }
#vnc[aria-disabled=false] { border-color: #388bfd; color: #79c0ff; }
.btn.danger { background: #8e1519; border-color: #b62324; color: #fff; }
.btn.danger:disabled { background: var(--card2); border-color: var(--line); color: var(--muted); }
.btn.primary { background: #1f6feb; border-color: #388bfd; color: #fff; }
.btn.small { padding: 3px 10px; font-size: 12.5px; }
.msg { font-size: 12.5px; }
.msg.fail { color: var(--red); }

/* timeline */
.tl-card { flex: 1 1 auto; min-height: 140px; display: flex; flex-direction: column; }
.tl { list-style: none; margin: 0; padding: 0; overflow-y: auto; min-height: 0; flex: 1; }
.tl li { display: grid; grid-template-columns: 12px minmax(0, 1fr) 118px; gap: 2px 8px; align-items: center; padding: 5px 0; border-top: 1px solid #21262d; }
.tl li:first-child { border-top: 0; }
.dot { width: 10px; height: 10px; border-radius: 50%; background: var(--grey); }
.tl .running .dot, li.running .dot { background: var(--blue); box-shadow: 0 0 0 3px rgba(68,147,248,.25); }
li.succeeded .dot { background: var(--green); } li.failed .dot { background: var(--red); }
.tl-name { font-weight: 600; overflow-wrap: anywhere; }
.tl-dur { font-variant-numeric: tabular-nums; font-size: 13px; text-align: right; white-space: nowrap; }
.tl-when { font-size: 11.5px; color: var(--muted); font-variant-numeric: tabular-nums; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.tl-track { height: 4px; background: #21262d; border-radius: 2px; position: relative; }
.tl-track i { position: absolute; top: 0; bottom: 0; border-radius: 2px; background: var(--grey); min-width: 2px; }
li.running .tl-track i { background: var(--blue); } li.succeeded .tl-track i { background: var(--green); } li.failed .tl-track i { background: var(--red); }

/* log */
.log-head { display: flex; align-items: center; gap: 10px; padding: 8px 12px; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
.log-head h2 { margin: 0; }
.follow { font-size: 12px; color: var(--muted); }
.follow.paused { color: var(--amber); }
.log {
  flex: 1; min-height: 0; overflow-y: auto; overflow-anchor: none; background: #010409; color: #d1d7e0;
  contain: strict; /* its size comes from the card, never from its lines: a new line lays out only the log */
  font-family: var(--mono); font-size: 12.5px; line-height: 1.5; padding: 8px 12px; border-radius: 0 0 8px 8px;
  white-space: pre-wrap; overflow-wrap: anywhere; tab-size: 4;
}
.log:focus-visible { outline: 2px solid var(--blue); outline-offset: -2px; }
.log .chunk > div, .log .empty { min-height: 1.5em; }
.log .e { color: #ff7b72; } .log .w { color: #e3b341; }
.log .gap { color: var(--muted); font-style: italic; border-top: 1px dashed #30363d; border-bottom: 1px dashed #30363d; margin: 2px 0; }
.log .empty { color: var(--muted); font-style: italic; }
#jump { position: absolute; right: 22px; bottom: 14px; box-shadow: 0 4px 14px rgba(0,0,0,.5); }

/* modal */
.modal { position: fixed; inset: 0; background: rgba(1,4,9,.72); display: flex; align-items: center; justify-content: center; padding: 16px; z-index: 10; }
.dialog { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 20px 22px; max-width: 460px; width: 100%; box-shadow: 0 12px 40px rgba(0,0,0,.6); }
.dialog h3 { margin: 0 0 8px; font-size: 18px; }
.dialog p { margin: 0 0 10px; color: #c9d1d9; }
.dialog .row { display: flex; justify-content: flex-end; gap: 10px; margin-top: 16px; }

@media (max-width: 920px) {
  main { display: flex; flex-direction: column; flex: none; }
  .side { overflow: visible; display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); }
  .tl { max-height: 320px; }
  .side { order: 2; } .log-card { order: 3; }
  .log-card { height: 70vh; min-height: 300px; }
  .eta { text-align: left; }
}
@media (min-width: 1700px) {
  body { font-size: 15px; } .log, code, .mono, .detail { font-size: 13.5px; }
}
@media (max-width: 520px) {
  .top, #banners, main, footer { padding-left: 10px; padding-right: 10px; }
  .meta { gap: 2px 14px; }
  h1 { font-size: 17px; }
}
</style>
</head>
<body data-state="connecting">
<header class="top">
  <div class="title-row">
    <span class="brand">azops</span>
    <h1 id="task">waiting for status…</h1>
    <span id="state" class="badge off">connecting</span>
    <span class="spacer"></span>
    <span id="conn" class="conn" role="status" title="How this page receives the status">connecting…</span>
    <span id="action-msg" class="msg muted" role="status" hidden></span>
    <div class="actions">
      <a id="vnc" class="btn" target="_blank" rel="noopener noreferrer" aria-disabled="true" role="button" title="No VNC address yet">Open VNC ↗</a>
      <button id="stop" class="btn danger" type="button" disabled>Stop task…</button>
    </div>
  </div>
  <dl class="meta">
    <div><dt>operation</dt><dd id="operation">—</dd></div>
    <div><dt>phase</dt><dd id="phase">—</dd></div>
    <div><dt>started</dt><dd id="started">—</dd></div>
    <div><dt>elapsed</dt><dd id="elapsed">—</dd></div>
  </dl>
</header>

<div id="banners" aria-live="polite">
  <div id="unavailable" class="banner fail" hidden></div>
  <div id="final" class="banner" hidden></div>
  <div id="stale" class="banner warn" hidden></div>
  <div id="stalled" class="banner warn" hidden></div>
  <div id="notice" class="banner info" hidden></div>
</div>

<main>
  <section class="card progress-card" aria-label="Progress">
    <div class="pct-row">
      <span id="pct" class="pct">0%</span>
      <div class="eta">
        <div id="eta" class="eta-main">no estimate yet</div>
        <div id="eta-sub" class="eta-sub"></div>
      </div>
    </div>
    <div id="bar" class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0" aria-label="Task progress"><div id="fill" class="fill"></div></div>
    <div class="step-row"><span id="step" class="step"></span><span id="results" class="results" title="Benchmark tasks so far" hidden><span id="passed" class="ok"></span> · <span id="failed" class="bad"></span></span><span id="detail" class="detail"></span></div>
  </section>

  <section class="card log-card" aria-label="Live log">
    <div class="log-head">
      <h2>Log</h2>
      <span id="follow" class="follow">following the end</span>
      <span class="spacer"></span>
      <span id="line-count" class="follow"></span>
    </div>
    <div id="log" class="log" role="log" tabindex="0" aria-label="Log output"><div class="empty">no output yet</div></div>
    <button id="jump" class="btn primary small" type="button" hidden>Jump to latest</button>
  </section>

  <aside class="side">
    <section class="card" aria-label="Cost">
      <h2>Cost</h2>
      <div class="big-row"><span id="cost" class="big">—</span><span id="cost-unit" class="unit">so far</span></div>
      <dl class="kv">
        <dt>projected</dt><dd id="projected">—</dd>
        <dt>rate</dt><dd id="rate">—</dd>
      </dl>
      <div id="rate-source" class="note clip"></div>
      <div id="billing-note" class="note warn" hidden>VM state unknown: the cost assumes the VM is billed for the whole task.</div>
    </section>

    <section class="card" aria-label="Virtual machine">
      <h2>VM <span id="vm-state" class="badge off">none</span><span id="vm-name" class="vm-name"></span></h2>
      <dl class="kv">
        <dt>IP</dt><dd id="vm-ip" class="mono">—</dd>
        <dt>size</dt><dd id="vm-size">—</dd>
        <dt>region</dt><dd id="vm-region">—</dd>
      </dl>
      <div id="vm-note" class="note" hidden></div>
    </section>

    <section class="card tl-card" aria-label="Timeline">
      <h2>Timeline</h2>
      <ol id="timeline" class="tl"><li class="muted" style="display:block">nothing yet</li></ol>
    </section>
  </aside>
</main>

<footer>status file <code id="status-file">—</code></footer>

<div id="modal" class="modal" hidden>
  <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="modal-title" aria-describedby="modal-text">
    <h3 id="modal-title">Stop this task?</h3>
    <p id="modal-text"></p>
    <p class="muted">The running command and what it started are stopped; the task ends as cancelled.</p>
    <div class="row">
      <button id="stop-cancel" class="btn" type="button">Keep running</button>
      <button id="stop-confirm" class="btn danger" type="button">Stop task</button>
    </div>
  </div>
</div>

<script>
)azops_web"
R"azops_web('use strict';
(function () {
  const MAX_LOG_LINES = 5000;
  // Lines go into blocks of this many: a new line then lays out its block and the few dozen blocks,
  // not every line of a long log.
  const CHUNK_LINES = 100;
  const STALE_AFTER_S = 10;
  const POLL_MS = 2000;
  const SSE_RETRY_MS = 15000;

  const $ = (id) => document.getElementById(id);
  const logEl = $('log');
  const tokenMeta = document.querySelector('meta[name="azops-token"]');
  const token = tokenMeta ? tokenMeta.getAttribute('content') || '' : '';
  // An unsubstituted placeholder or an empty value both mean: this server cannot stop the task.
  const haveToken = /^[0-9a-f]{16,}$/i.test(token);

  let status = null;         // last status applied
  let receivedAt = 0;        // Date.now() when it arrived; local clock, so no skew with the writer
  let runKey = '';           // identifies one run in one file: a change resets the log
  let shownTail = [];        // log_tail as last applied, to find which lines are new
  let shownPartial = false;  // its last line is a drawing of a line that has not ended (log_partial)
  let newWhilePaused = 0;
  let lineCount = 0;         // lines received since the log was reset
  let linesShown = 0;        // line elements in the log (gap markers included)
  let stopRequested = false;
  let unavailable = null;
  let es = null, pollTimer = null, sseRetryTimer = null;
  let connState = '';
  let lastIcon = '';

  // ---- formatting (text only) ----
  const num = (v) => (typeof v === 'number' && isFinite(v) ? v : null);
  const str = (v) => (typeof v === 'string' && v !== '' ? v : null);
  const pad = (n) => String(n).padStart(2, '0');
  function dur(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + 's';
    const m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + pad(s % 60) + 's';
    return Math.floor(m / 60) + 'h ' + pad(m % 60) + 'm';
  }
  function roughDur(s) {
    s = Math.max(0, s);
    if (s < 60) return Math.round(s) + 's';
    const m = Math.round(s / 60);
    if (m < 60) return m + ' min';
    return Math.floor(m / 60) + 'h ' + pad(m % 60) + 'm';
  }
  // Made once: toLocaleTimeString() builds a new formatter on every call, the page's costliest step.
  const HM = new Intl.DateTimeFormat([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const HMS = new Intl.DateTimeFormat([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  const DAY = new Intl.DateTimeFormat([], { month: 'short', day: 'numeric' });
  function clock(ms, withSeconds) {
    const d = new Date(ms);
    let t = (withSeconds ? HMS : HM).format(d);
    if (Math.abs(ms - Date.now()) > 20 * 3600 * 1000 || d.getDate() !== new Date().getDate()) {
      t = DAY.format(d) + ' ' + t;
    }
    return t;
  }
  function money(v) {
    if (v > 0 && v < 0.01) return '<$0.01';
    return '$' + v.toFixed(2);
  }
  const parseTime = (v) => { const t = Date.parse(v); return isFinite(t) ? t : null; };
  const pretty = (name) => String(name).replace(/_/g, ' ');

  function setText(id, text) {
    const node = $(id);
    if (node.textContent !== text) node.textContent = text;
  }
  // Writes only what changes: every write, even of the same value, can cost the page a style pass,
  // and each update of every open dashboard goes through here.
  function put(node, key, value) {
    if (node[key] !== value) node[key] = value;
  }
  function putAttr(node, name, value) {
    if (node.getAttribute(name) !== value) node.setAttribute(name, value);
  }
  function make(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const bannerShown = {};
  function banner(id, show, title, body, extraClass) {
    const node = $(id);
    put(node, 'hidden', !show);
    if (!show) return;
    if (extraClass) put(node, 'className', 'banner ' + extraClass);
    const key = JSON.stringify([title, body.text || '', body.err || '']);
    if (bannerShown[id] === key) return;
    bannerShown[id] = key;
    const parts = [make('b', '', title), document.createTextNode(body.text || '')];
    if (body.err) parts.push(make('span', 'err', body.err));
    node.replaceChildren(...parts);
  }

  // ---- time-dependent values ----
  function staleSeconds() {
    if (!status || status.state !== 'running') return 0;
    const t = parseTime(status.updated_at);
    if (t === null) return 0;
    const age = (Date.now() - t) / 1000;
    return age > STALE_AFTER_S ? age : 0;
  }
  const ticking = () => status && status.state === 'running' && !staleSeconds();
  const sinceReceipt = () => (ticking() ? (Date.now() - receivedAt) / 1000 : 0);

  // ---- log ----
  const ANSI = /\x1b\[[0-?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]/g;
  function cleanLine(raw) {
    let s = String(raw);
    const cr = s.lastIndexOf('\r');
    if (cr >= 0 && cr < s.length - 1) s = s.slice(cr + 1);
    return s.replace(ANSI, '');
  }
  const ERR = /\b(error|fatal|failed|failure|traceback|exception|panic)\b/i;
  const WARN = /\bwarn(ing)?\b/i;
  const lineNode = (text, cls) => make('div', cls || (ERR.test(text) ? 'e' : WARN.test(text) ? 'w' : ''), text);
  // The new tail repeats the end of the previous one: the longest suffix of `prev` that is a prefix of
  // `next` has been shown already. No overlap at all means lines were missed between two updates. (The
  // status carries no line numbers, so a burst of identical lines can look like no change.)
  function unseenLines(prev, next) {
    for (let k = Math.min(prev.length, next.length); k > 0; k--) {
      let same = true;
      for (let i = 0; i < k && same; i++) same = prev[prev.length - k + i] === next[i];
      if (same) return { lines: next.slice(k), gap: false };
    }
    return { lines: next, gap: prev.length > 0 && next.length > 0 };
  }
  // Keeps a scrollable box at its end until the user moves up in it. Only a move up counts: growing
  // content or a shrinking box also leave the view off the end for a moment, without any user action.
  function stickToEnd(node, onChange) {
    const box = { following: true, toEnd() { node.scrollTop = node.scrollHeight; } };
    let lastTop = 0;
    node.addEventListener('scroll', () => {
      const top = node.scrollTop;
      const movedUp = top < lastTop - 1;
      lastTop = top;
      const atEnd = node.scrollHeight - top - node.clientHeight < 6;
      const next = atEnd ? true : movedUp ? false : box.following;
      if (next === box.following) return;
      box.following = next;
      if (onChange) onChange();
    });
    if (window.ResizeObserver) new ResizeObserver(() => { if (box.following) box.toEnd(); }).observe(node);
    return box;
  }
  const logFollow = stickToEnd(logEl, () => {
    if (logFollow.following) newWhilePaused = 0;
    renderFollow();
  });
  const timelineFollow = stickToEnd($('timeline'));
  function resetLog() {
    logEl.replaceChildren(make('div', 'empty', 'no output yet'));
    shownTail = [];
    shownPartial = false;
    lineCount = 0;
    linesShown = 0;
    newWhilePaused = 0;
    logFollow.following = true;
  }
  function appendLog(tail, partial) {
    const next = tail.map(cleanLine);
    let prev = shownTail;
    if (shownPartial) {  // the drawing shown last gives way to its next drawing or to the ended line
      if (partial && next.length === prev.length && next.every((line, i) => line === prev[i])) return;
      prev = prev.slice(0, -1);
      removeNewestLine();
    }
    const { lines, gap } = unseenLines(prev, next);
    shownTail = next;
    shownPartial = partial && next.length > 0;
    if (!lines.length) return renderFollow();
    const first = logEl.firstElementChild;
    if (first && first.className === 'empty') first.remove();
    const nodes = lines.map((line) => lineNode(line));
    if (gap) nodes.unshift(lineNode('⋯ more lines arrived than one update carries; some are not shown here', 'gap'));
    let chunk = logEl.lastElementChild;
    for (const node of nodes) {
      if (!chunk || chunk.childElementCount >= CHUNK_LINES) chunk = logEl.appendChild(make('div', 'chunk'));
      chunk.appendChild(node);
    }
    linesShown += nodes.length;
    lineCount += lines.length;
    if (linesShown > MAX_LOG_LINES) dropOldest(linesShown - MAX_LOG_LINES);
    if (!logFollow.following) newWhilePaused += lines.length;
    renderFollow();
    if (logFollow.following) logFollow.toEnd();  // last: it lays the page out to know the end
  }
  function removeNewestLine() {
    const chunk = logEl.lastElementChild;
    if (!chunk || chunk.className !== 'chunk') return;
    chunk.lastElementChild.remove();
    if (!chunk.childElementCount) chunk.remove();
    linesShown--;
    lineCount--;
    if (newWhilePaused > 0) newWhilePaused--;
  }
  function dropOldest(count) {
    const before = logFollow.following ? 0 : logEl.scrollHeight;
    linesShown -= count;
    while (count > 0) {
      const chunk = logEl.firstElementChild;
      if (chunk.childElementCount <= count) {
        count -= chunk.childElementCount;
        chunk.remove();
      } else {
        for (; count > 0; count--) chunk.firstElementChild.remove();
      }
    }
    // A paused view keeps showing the same lines while those above it go.
    if (!logFollow.following) logEl.scrollTop -= before - logEl.scrollHeight;
  }
  function renderFollow() {
    const f = $('follow');
    put(f, 'textContent', logFollow.following ? 'following the end' : 'paused — scrolled up');
    put(f, 'className', logFollow.following ? 'follow' : 'follow paused');
    const jump = $('jump');
    put(jump, 'hidden', logFollow.following);
    put(jump, 'textContent', newWhilePaused > 0 ? 'Jump to latest (' + newWhilePaused + ' new)' : 'Jump to latest');
    const shown = Math.min(lineCount, MAX_LOG_LINES);
    setText('line-count', lineCount ? shown + (shown === 1 ? ' line' : ' lines') : '');
  }
  $('jump').addEventListener('click', () => {
    logFollow.following = true;
    newWhilePaused = 0;
    logFollow.toEnd();
    renderFollow();
  });

  // ---- rendering ----
  const STATE_BADGE = { running: 'run', succeeded: 'ok', failed: 'fail', cancelled: 'off' };
  function renderHeader(s) {
    setText('task', str(s.task) || 'task');
    const badge = $('state');
    put(badge, 'textContent', s.state || 'unknown');
    put(badge, 'className', 'badge ' + (STATE_BADGE[s.state] || 'off'));
    setText('operation', str(s.operation) || '—');
    setText('phase', str(s.phase) ? pretty(s.phase) : '—');
    const started = parseTime(s.started_at);
    setText('started', started === null ? '—' : clock(started, false));
    put($('started'), 'title', s.started_at || '');
    const elapsed = num(s.elapsed_seconds);
    setText('elapsed', elapsed === null ? '—' : dur(elapsed + sinceReceipt()));
    setText('status-file', str(s.status_file) || '(not given)');
  }
  function renderProgress(s) {
    const pct = Math.max(0, Math.min(100, num(s.progress_pct) || 0));
    const shown = pct >= 100 || pct <= 0 ? Math.round(pct) : pct < 10 ? Math.floor(pct * 10) / 10 : Math.floor(pct);
    setText('pct', shown + '%');
    const fill = $('fill').style;
    if (fill.width !== pct + '%') fill.width = pct + '%';
    putAttr($('bar'), 'aria-valuenow', String(Math.round(pct)));
    const step = num(s.step), total = num(s.total_steps);
    setText('step', total ? (s.operation === 'benchmark' ? 'task ' : 'step ') + step + ' of ' + total : '');
    const passed = num(s.tasks_succeeded), failed = num(s.tasks_failed);
    $('results').hidden = passed === null || failed === null;
    setText('passed', passed === null ? '' : passed + ' passed');
    setText('failed', failed === null ? '' : failed + ' failed');
    setText('detail', str(s.detail) || '');
    put($('detail'), 'title', str(s.detail) || '');

    let main = '', sub = '';
    const eta = num(s.eta_seconds);
    if (s.state === 'running') {
      if (eta === null) {
        main = 'no estimate yet';
        sub = s.eta_source && s.eta_source !== 'none' ? '' : 'no past runs or progress to estimate from';
      } else {
        const left = Math.max(0, eta - sinceReceipt());
        main = left >= 1 ? '≈ ' + roughDur(left) + ' left' : 'any moment (past the estimate)';
        const lo = num(s.eta_low_seconds), hi = num(s.eta_high_seconds);
        const bits = [];
        if (lo !== null && hi !== null) bits.push('range ' + roughDur(lo) + '–' + roughDur(hi));
        bits.push('done ≈ ' + clock(receivedAt + eta * 1000, false));
        bits.push(ETA_SOURCE[s.eta_source] || 'source: ' + (s.eta_source || 'unknown'));
        sub = bits.join(' · ');
        const updated = parseTime(s.updated_at);
        if (staleSeconds() && updated !== null) {
          sub = 'last estimate, at ' + clock(updated, false) + ': ' + main;
          main = 'unknown: no heartbeat';
        }
      }
    } else if (s.state) {
      main = s.state === 'succeeded' ? 'done' : s.state;
      const el = num(s.elapsed_seconds);
      sub = el === null ? '' : 'after ' + dur(el);
    }
    setText('eta', main);
    setText('eta-sub', sub);
  }
  const ETA_SOURCE = {
    history: 'from past runs', progress: 'from progress so far', blend: 'from past runs and progress',
    none: 'no estimate',
  };
  function renderCost(s) {
    const known = s.rate_known !== false && num(s.hourly_rate_usd) !== null;
    const cost = $('cost');
    const so = num(s.cost_usd), rate = num(s.hourly_rate_usd), proj = num(s.projected_cost_usd);
    // A command run without any VM (azops run on this machine): nothing to price, nothing to warn about.
    const noVm = !known && !str(s.vm_size) && !str(s.vm_name);
    if (noVm) {
      put(cost, 'textContent', 'no VM');
      put(cost, 'className', 'big unknown');
      put($('cost-unit'), 'hidden', true);
      setText('rate', '—');
      setText('projected', '—');
    } else if (known) {
      put(cost, 'textContent', so === null ? '—' : money(so));
      put(cost, 'className', 'big');
      put($('cost-unit'), 'hidden', false);
      setText('rate', '$' + rate.toFixed(3) + '/h');
      const about = proj === null ? '' : money(proj);
      setText('projected', proj === null ? '—' : (about[0] === '<' ? about : '~' + about) + ' total');
    } else {
      put(cost, 'textContent', 'rate unknown');
      put(cost, 'className', 'big unknown');
      put($('cost-unit'), 'hidden', true);
      setText('rate', 'unknown');
      setText('projected', '—');
    }
    const src = str(s.rate_source);
    setText('rate-source', noVm ? 'no VM size given: nothing is priced' : src ? 'rate: ' + src :
      known ? '' : 'no price known for this VM size and region');
    put($('rate-source'), 'title', $('rate-source').textContent);
    put($('billing-note'), 'hidden', !s.billing_assumed || noVm);
    const stateKnown = VM_BADGE[str(s.vm_state)] !== undefined;
    setText('billing-note', stateKnown
      ? 'Time when the VM state was not known yet is counted as billed.'
      : 'VM state unknown: the cost assumes the VM is billed for the whole task.');
  }
  const VM_BADGE = { running: 'ok', starting: 'warn', stopping: 'warn', deallocating: 'warn', stopped: 'hot', deallocated: 'off', absent: 'off' };
  const BILLED = ['running', 'starting', 'stopping'];
  function renderVm(s) {
    const badge = $('vm-state');
    const vmState = str(s.vm_state);
    const anyVm = vmState || str(s.vm_name) || str(s.vm_ip) || str(s.vm_size);
    put(badge, 'textContent', vmState || (anyVm ? 'unknown' : 'none'));
    put(badge, 'className', 'badge ' + (VM_BADGE[vmState] || 'off'));
    setText('vm-name', str(s.vm_name) || '');
    setText('vm-ip', str(s.vm_ip) || '—');
    setText('vm-size', str(s.vm_size) || '—');
    setText('vm-region', str(s.region) || '—');
    const note = $('vm-note');
    let text = '', cls = 'note';
    const ended = s.state && s.state !== 'running';
)azops_web"
R"azops_web(    if (vmState === 'stopped') { text = 'Stopped but still allocated: Azure still bills compute until it is deallocated.'; cls = 'note hot'; }
    else if (vmState === 'deallocated') text = 'Deallocated: compute is not billed.';
    else if (vmState === 'absent') text = 'No such VM on Azure (not created yet, or gone): nothing is billed.';
    else if (ended && BILLED.includes(vmState)) {
      const rate = num(s.hourly_rate_usd);
      text = 'The task has ended but the VM is still allocated' + (rate !== null && s.rate_known !== false ? ' and billed at $' + rate.toFixed(3) + '/h' : ' and billed') + '.';
      cls = 'note hot';
    }
    const idle = parseTime(s.idle_deallocate_at), written = parseTime(s.updated_at);
    if (idle !== null) {
      // Counted on the writer's clock (which a simulation may run faster), not this browser's.
      const left = written === null ? null : (idle - written) / 1000 - (Date.now() - receivedAt) / 1000;
      text = (text ? text + ' ' : '') + 'Deallocates when idle at ' + clock(idle, false) +
        (left !== null && left > 0 ? ' (in ' + roughDur(left) + ')' : '') + '.';
    }
    put(note, 'hidden', !text);
    put(note, 'textContent', text);
    put(note, 'className', cls);
  }
  function renderVnc(s) {
    const a = $('vnc');
    let url = null;
    try {
      const u = str(s.vnc_url) ? new URL(s.vnc_url, location.href) : null;
      if (u && (u.protocol === 'http:' || u.protocol === 'https:')) url = u.href;
    } catch (e) { url = null; }
    if (url) {
      putAttr(a, 'href', url);
      putAttr(a, 'aria-disabled', 'false');
      put(a, 'title', url);
    } else {
      if (a.hasAttribute('href')) a.removeAttribute('href');
      putAttr(a, 'aria-disabled', 'true');
      put(a, 'title', 'No VNC address yet');
    }
  }
  function renderStop(s) {
    const btn = $('stop');
    const can = haveToken && s.state === 'running' && s.cancellable === true && !stopRequested;
    put(btn, 'disabled', !can);
    put(btn, 'textContent', stopRequested && s.state === 'running' ? 'Stopping…' : 'Stop task…');
    put(btn, 'title', !haveToken ? 'This server cannot stop the task (no run token)' :
      s.state !== 'running' ? 'The task has ended' :
      s.cancellable !== true ? 'The task cannot be stopped right now' : 'Stop the task (asks for confirmation)');
  }
  // The timeline is rebuilt only when what it shows has changed: at most once a second while a
  // step runs, not on every update.
  let timelineShown = '';
  function renderTimeline(s) {
    const list = $('timeline');
    const entries = Array.isArray(s.timeline) ? s.timeline.filter((e) => e && typeof e === 'object') : [];
    const now = ticking() ? Date.now() : receivedAt;
    const spans = entries.map((e) => {
      const start = parseTime(e.started_at);
      let d = num(e.duration_seconds) || 0;
      if (e.state === 'running') d += sinceReceipt();
      const end = parseTime(e.ended_at);
      return { e, start, d, end: end !== null ? end : start !== null ? (e.state === 'running' ? Math.max(now, start) : start + d * 1000) : null };
    });
    const starts = spans.map((x) => x.start).filter((v) => v !== null);
    const ends = spans.map((x) => x.end).filter((v) => v !== null);
    const t0 = starts.length ? Math.min(...starts) : null;
    const t1 = ends.length ? Math.max(...ends) : null;
    const width = t0 !== null && t1 !== null && t1 > t0 ? t1 - t0 : null;
    const rows = spans.map(({ e, start, d, end }) => {
      const st = ['running', 'succeeded', 'failed', 'cancelled'].includes(e.state) ? e.state : 'other';
      const failedOrCancelled = st === 'failed' || st === 'cancelled';
      const row = { st, title: (e.name || '') + ' — ' + (e.state || ''), name: pretty(e.name || '?'),
        dur: (failedOrCancelled ? st + ' · ' : '') + dur(d), when: null, left: null, width: null };
      if (start === null) return row;
      row.when = clock(start, true) + ' → ' + (st === 'running' ? 'now' : end !== null ? clock(end, true) : '…');
      if (width !== null) {
        row.left = ((start - t0) / width * 100).toFixed(1) + '%';
        row.width = (Math.max(0, (end === null ? start : end) - start) / width * 100).toFixed(1) + '%';
      }
      return row;
    });
    const key = JSON.stringify(rows);
    if (key === timelineShown) return;
    timelineShown = key;
    if (!rows.length) {
      const li = make('li', 'muted', 'nothing yet');
      li.style.display = 'block';
      list.replaceChildren(li);
      return;
    }
    list.replaceChildren(...rows.map(timelineItem));
    if (timelineFollow.following) timelineFollow.toEnd();  // the current operation stays in view
  }
  function timelineItem(row) {
    const li = make('li', row.st);
    li.title = row.title;
    li.append(make('span', 'dot'), make('span', 'tl-name', row.name), make('span', 'tl-dur', row.dur));
    if (row.when === null) return li;
    li.append(make('span', 'dot-gap'), make('span', 'tl-when', row.when));
    if (row.left !== null) {
      const track = make('div', 'tl-track');
      const bar = make('i');
      bar.style.left = row.left;
      bar.style.width = row.width;
      track.appendChild(bar);
      li.appendChild(track);
    }
    return li;
  }
  function renderBanners(s) {
    const err = str(s.error);
    if (s.state === 'succeeded') {
      const el = num(s.elapsed_seconds);
      banner('final', true, 'Succeeded.', { text: (str(s.task) || 'The task') + ' finished' + (el !== null ? ' in ' + dur(el) : '') + '.' }, 'ok');
    } else if (s.state === 'failed') {
      banner('final', true, 'Failed.', { text: 'during ' + (str(s.operation) || 'the task') + (str(s.phase) ? ' / ' + pretty(s.phase) : ''), err: err || 'no error message was recorded' }, 'fail');
    } else if (s.state === 'cancelled') {
      banner('final', true, 'Cancelled.', { text: 'The task was stopped before it finished.', err: err || undefined }, 'off');
    } else {
      banner('final', false);
    }
    const stale = staleSeconds();
    const updated = parseTime(s.updated_at);
    document.body.toggleAttribute('data-stale', !!stale);
    banner('stale', !!stale, 'No heartbeat for ' + dur(stale) + '.',
      { text: 'The writer is gone or not updating since ' + (updated !== null ? clock(updated, true) : '?') +
        ': the numbers below are from then and may be wrong. Check the process that runs the task.' });
    const stalled = num(s.stalled_seconds);
    const burned = num(s.stalled_cost_usd);
    banner('stalled', stalled !== null && s.state === 'running', 'Stuck for ' + roughDur(stalled || 0) + '.',
      { text: 'No progress and no output for ' + roughDur(stalled || 0) + ', much longer than this step usually takes.' +
        (burned !== null && s.rate_known !== false ? ' It has cost ' + money(burned) + ' since then.' : '') });
    const notice = str(s.notice);
    banner('notice', !!notice, 'Note:', { text: notice || '' });
    banner('unavailable', !!unavailable, 'Status unavailable.', unavailable ? {
      text: 'The server cannot read the status file' + (unavailable.file ? ' ' + unavailable.file : '') + '.',
      err: unavailable.error } : {});
  }
  function renderTitle(s) {
    const pct = Math.floor(Math.max(0, Math.min(100, num(s.progress_pct) || 0)));
    const what = str(s.operation) || str(s.task) || 'task';
    let title = pct + '% ' + what;
    if (s.state && s.state !== 'running') title = s.state + ': ' + title;
    else if (staleSeconds()) title = 'stale: ' + title;
    title += ' — azops';
    if (document.title !== title) document.title = title;
    renderIcon(pct, staleSeconds() ? 'stale' : s.state);
  }
  // A progress ring in the tab, drawn locally (a data: URL; nothing is fetched).
  function renderIcon(pct, state) {
    const key = pct + state;
    if (key === lastIcon) return;
    lastIcon = key;
    const c = document.createElement('canvas');
    c.width = c.height = 32;
    const g = c.getContext('2d');
    if (!g) return;
    const colour = { succeeded: '#3fb950', failed: '#f85149', cancelled: '#8d96a0', stale: '#d29922' }[state] || '#4493f8';
    g.lineWidth = 6;
    g.strokeStyle = '#30363d';
    g.beginPath(); g.arc(16, 16, 12, 0, 2 * Math.PI); g.stroke();
    g.strokeStyle = colour;
    g.beginPath(); g.arc(16, 16, 12, -Math.PI / 2, -Math.PI / 2 + 2 * Math.PI * (state === 'running' || state === 'stale' ? pct / 100 : 1)); g.stroke();
    $('favicon').setAttribute('href', c.toDataURL('image/png'));
  }

  function renderAll() {
    if (!status) {
      banner('unavailable', !!unavailable, 'Status unavailable.', unavailable ? {
        text: 'The server cannot read the status file' + (unavailable.file ? ' ' + unavailable.file : '') + '.',
        err: unavailable.error } : {});
      if (unavailable) {
        setText('task', 'no status to show');
        setText('state', 'unavailable');
        $('state').className = 'badge warn';
        if (unavailable.file) setText('status-file', unavailable.file);
      }
      return;
    }
    const s = status;
    putAttr(document.body, 'data-state', s.state || 'unknown');
    renderHeader(s);
    renderProgress(s);
    renderCost(s);
    renderVm(s);
    renderVnc(s);
    renderStop(s);
    renderTimeline(s);
    renderBanners(s);
    renderTitle(s);
  }

  function applyStatus(s) {
    if (!s || typeof s !== 'object' || Array.isArray(s)) return;
    const key = (s.status_file || '') + '|' + (s.started_at || '') + '|' + (s.task || '');
    const newer = parseTime(s.updated_at), older = status ? parseTime(status.updated_at) : null;
    if (key === runKey && newer !== null && older !== null && newer < older) return;  // a late poll answer
    if (key !== runKey) {
      runKey = key;
      resetLog();
      stopRequested = false;
    }
    if (status && status.state !== s.state) stopRequested = false;
    status = s;
    receivedAt = Date.now();
    unavailable = null;
    renderAll();
    // Last, as following the log reads its height: after every other change, one layout serves all.
    appendLog(Array.isArray(s.log_tail) ? s.log_tail.filter((l) => typeof l === 'string') : [], s.log_partial === true);
  }
  function applyUnavailable(text) {
    let why = null;
    try { why = JSON.parse(text); } catch (e) { why = null; }
    unavailable = {
      error: why && typeof why.error === 'string' ? why.error : 'no readable status',
      file: why && typeof why.status_file === 'string' ? why.status_file : '',
    };
    renderAll();
  }
  function applyText(text) {
    let s;
    try { s = JSON.parse(text); } catch (e) { return; }
    applyStatus(s);
  }

  // ---- transport: SSE first, polling when SSE fails ----
  // Events that come faster than this page can draw them (a busy machine, a flooding log) queue up;
  // drawing each would leave the page further behind with every one. Only the newest event waiting
  // is drawn, once the page is free (skipped log lines show as a gap, as between two polls).
  let undrawn = null;
  function drawSoon(draw) {
    const idle = undrawn === null;
    undrawn = draw;
    if (idle) setTimeout(() => { const newest = undrawn; undrawn = null; newest(); }, 0);
  }
  function setConn(state) {
    if (state === connState) return;
    connState = state;
    const node = $('conn');
    const label = { live: 'live (SSE)', polling: 'polling every 2 s', down: 'disconnected — retrying', paused: 'paused (tab hidden)', connecting: 'connecting…' };
    node.textContent = label[state] || state;
    node.className = 'conn ' + state;
  }
  function openSse() {
    if (es || document.hidden) return;
    if (!window.EventSource) { startPolling(); return; }
    const source = new EventSource('api/azure-ops-events');
    es = source;
    source.addEventListener('open', () => { stopPolling(); setConn('live'); });
    source.addEventListener('status', (ev) => { stopPolling(); setConn('live'); drawSoon(() => applyText(ev.data)); });
    source.addEventListener('unavailable', (ev) => { stopPolling(); setConn('live'); drawSoon(() => applyUnavailable(ev.data)); });
    source.addEventListener('error', () => {
      if (es !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        // Refused for good (e.g. 503 at the server's stream cap): poll, and try the stream again later.
        es = null;
        clearTimeout(sseRetryTimer);
        sseRetryTimer = setTimeout(openSse, SSE_RETRY_MS);
      }
      startPolling();
    });
  }
  function closeSse() {
    clearTimeout(sseRetryTimer);
    sseRetryTimer = null;
    if (es) { es.close(); es = null; }
  }
  function startPolling() {
    if (pollTimer || document.hidden) return;
    pollTimer = setInterval(pollOnce, POLL_MS);
    pollOnce();
  }
  function stopPolling() {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = null;
  }
  async function pollOnce() {
    try {
      const r = await fetch('api/azure-ops-status', { cache: 'no-store', headers: { Accept: 'application/json' } });
      const text = await r.text();
      if (!pollTimer) return;
      if (r.status === 503) applyUnavailable(text);
      else if (r.ok) applyText(text);
      else throw new Error('HTTP ' + r.status);
      setConn('polling');
    } catch (e) {
      if (pollTimer) setConn('down');
    }
  }
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      closeSse();
      stopPolling();
      setConn('paused');
    } else {
      setConn('connecting');
      openSse();
    }
  });

  // ---- Stop, with our own confirmation dialog ----
  const modal = $('modal');
  let lastFocus = null;
  function openModal() {
    if (!status) return;
    const cost = status.rate_known !== false && num(status.cost_usd) !== null ? ' It has cost ' + money(status.cost_usd) + ' so far.' : '';
    setText('modal-text', 'Stop "' + (str(status.task) || 'task') + '" during ' + (str(status.operation) || '?') +
      ' at ' + Math.floor(num(status.progress_pct) || 0) + '%?' + cost);
    lastFocus = document.activeElement;
    modal.hidden = false;
    $('stop-cancel').focus();
  }
  function closeModal() {
    modal.hidden = true;
    if (lastFocus && lastFocus.focus) lastFocus.focus();
  }
  function actionMessage(text, fail) {
    const m = $('action-msg');
    m.hidden = !text;
    m.textContent = text;
    m.className = 'msg ' + (fail ? 'fail' : 'muted');
  }
  async function requestStop() {
    closeModal();
    stopRequested = true;
    renderAll();
    actionMessage('Stop requested — waiting for the task to end…');
    try {
      const r = await fetch('api/azure-ops/cancel', { method: 'POST', cache: 'no-store', headers: { 'X-Azops-Token': token } });
      let message = '';
      try { const body = await r.json(); message = typeof body.message === 'string' ? body.message : ''; } catch (e) { message = ''; }
      if (r.status !== 202) {
        stopRequested = false;
        actionMessage('Stop refused (HTTP ' + r.status + ')' + (message ? ': ' + message : ''), true);
      } else {
        actionMessage('Stop requested' + (message ? ' (' + message + ')' : '') + ' — waiting for the task to end…');
      }
    } catch (e) {
      stopRequested = false;
      actionMessage('Stop failed: the server did not answer.', true);
    }
    renderAll();
  }
  $('stop').addEventListener('click', openModal);
  $('stop-cancel').addEventListener('click', closeModal);
  $('stop-confirm').addEventListener('click', requestStop);
  modal.addEventListener('click', (ev) => { if (ev.target === modal) closeModal(); });
  document.addEventListener('keydown', (ev) => {
    if (modal.hidden) return;
    if (ev.key === 'Escape') { ev.preventDefault(); closeModal(); }
    else if (ev.key === 'Tab') {
      const first = $('stop-cancel'), last = $('stop-confirm');
      if (ev.shiftKey && document.activeElement === first) { ev.preventDefault(); last.focus(); }
      else if (!ev.shiftKey && document.activeElement === last) { ev.preventDefault(); first.focus(); }
    }
  });
)azops_web"
R"azops_web(  $('vnc').addEventListener('click', (ev) => { if ($('vnc').getAttribute('aria-disabled') === 'true') ev.preventDefault(); });

  const reducedMotion = window.matchMedia ? window.matchMedia('(prefers-reduced-motion: reduce)') : null;
  let stripeStep = 0;
  setInterval(() => {
    if (!status) return;
    renderAll();
    if (ticking() && !(reducedMotion && reducedMotion.matches)) {
      stripeStep = (stripeStep + 1) % 4;
      $('fill').style.backgroundPosition = stripeStep * 6 + 'px 0';
    }
  }, 1000);
  // For tests and for people debugging in the console: feed a status object as if it had arrived.
  window.azopsPage = Object.freeze({ applyStatus: (s) => applyStatus(JSON.parse(JSON.stringify(s))) });
  setConn('connecting');
  openSse();
})();
</script>
</body>
</html>
)azops_web";

}  // namespace azops::detail
// clang-format on
