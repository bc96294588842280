// Prometheus scraping two real `azops run` servers, as a team watching several VMs would: each run
// has its own task name, operation and VM size, and a slow child that reports progress. The test
// writes a prometheus.yml (scrape_interval 1s) for both, starts Debian's prometheus on a free loopback
// port, and asks its HTTP API until both tasks' azops_progress_ratio and azops_cost_usd are there with
// their task/operation/vm_size labels (30 s deadline). It also evaluates the PromQL queries that
// the README proposes, and runs `promtool check metrics` on each server's /metrics body.
//
//   node tests/prometheus/prometheus_test.mjs --azops build/bin/azops
//       [--prometheus /usr/bin/prometheus] [--promtool /usr/bin/promtool] [--deadline 30]
//
// AZOPS_BIN, PROMETHEUS and PROMTOOL work instead of the options. Exit 0 when everything holds, 1 with
// the reason otherwise (2 when the tools are missing); nothing it started outlives it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    azops: { type: 'string', default: process.env.AZOPS_BIN || '' },
    prometheus: { type: 'string', default: process.env.PROMETHEUS || '/usr/bin/prometheus' },
    promtool: { type: 'string', default: process.env.PROMTOOL || '/usr/bin/promtool' },
    deadline: { type: 'string', default: '30' },
  },
});
const DEADLINE_MS = Number(opts.deadline) * 1000;
// Everything (start-up, the deadline, clean-up) must fit in this, or the test fails rather than hangs.
const WHOLE_TEST_MS = DEADLINE_MS + 60000;

if (!opts.azops || !fs.existsSync(opts.azops)) {
  console.error(`prometheus test: no azops binary (--azops or AZOPS_BIN): '${opts.azops}'`);
  process.exit(2);
}
if (!fs.existsSync(opts.prometheus)) {
  console.error(`prometheus test: no prometheus at ${opts.prometheus} (apt-get install prometheus, or --prometheus)`);
  process.exit(2);
}
process.env.AZOPS_BIN = path.resolve(opts.azops);
const { Cleanup, OwnedProcess, failOnHangOrSignal, waitFor } = await import('../browser/azops_process.mjs');

// Two WAA machines. The second task name holds a space and double quotes, which the exposition must
// escape and Prometheus must read back unchanged.
const RUNS = [
  { task: 'setup-waa-vm1', operation: 'docker_build', vmSize: 'Standard_D8ds_v5', child: dockerBuildChild },
  { task: 'run-waa "vm2"', operation: 'windows_boot', vmSize: 'Standard_D4ds_v5', child: windowsBootChild },
];

// A legacy-builder docker build, one step every 400 ms: the docker parser turns it into step X of 40.
function dockerBuildChild() {
  return `
process.stdout.write('pid ' + process.pid + '\\nSending build context to Docker daemon  48.13kB\\n');
let step = 0;
const timer = setInterval(() => {
  step += 1;
  process.stdout.write('Step ' + step + '/40 : RUN pip install --no-cache-dir -r requirements-' + step + '.txt\\n' +
    ' ---> Running in ' + (0x5a1c0000 + step).toString(16) + 'e3f1\\n');
  if (step === 39) clearInterval(timer);
}, 400);
setInterval(() => {}, 1 << 30);
`;
}

// The Windows container's boot log: the download announced, then wget's dot progress, 1 % every 300 ms.
function windowsBootChild() {
  return `
process.stdout.write('pid ' + process.pid + '\\n\\u276f Starting Windows for Docker v4.35...\\n' +
  '\\u276f Requesting Windows 11 Enterprise from the Microsoft servers...\\n\\u276f Downloading Windows 11 Enterprise...\\n\\n');
let pct = 0;
const timer = setInterval(() => {
  pct += 1;
  const kb = String(pct * 65536) + 'K';
  process.stdout.write(kb.padStart(8) + ' ........ ........ ........ ........ ' + String(pct).padStart(2) + '%  112M 52s\\n');
  if (pct === 99) clearInterval(timer);
}, 300);
setInterval(() => {}, 1 << 30);
`;
}

const freePort = () => new Promise((resolve, reject) => {
  const server = net.createServer();
  server.once('error', reject);
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => resolve(port));
  });
});

const hostPort = (url) => new URL(url).host;

// prometheus.yml for the runs: one job, one target per VM's azops, scraped every second.
function prometheusConfig(targets) {
  return [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: azops',
    '    static_configs:',
    `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
    '',
  ].join('\n');
}

class PrometheusProcess extends OwnedProcess {
  constructor(configFile, dataDir, port, logFile) {
    const log = fs.openSync(logFile, 'w');
    super(opts.prometheus, [
      `--config.file=${configFile}`, `--storage.tsdb.path=${dataDir}`, `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ], { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    this.port = port;
    this.logFile = logFile;
  }

  get base() { return `http://127.0.0.1:${this.port}`; }

  log() {
    try { return fs.readFileSync(this.logFile, 'utf8'); } catch { return ''; }
  }

  async ready() {
    await waitFor(async () => {
      if (this.exitCode !== undefined) throw new Error(`prometheus exited (${this.exitCode}) before it was ready:\n${this.log()}`);
      try {
        return (await fetch(`${this.base}/-/ready`)).status === 200;
      } catch {
        return false;
      }
    }, { timeoutMs: 20000, intervalMs: 100, what: `prometheus ready on ${this.base}` });
  }

  // The result vector of an instant query; throws when Prometheus says the query failed.
  async query(promql) {
    const response = await fetch(`${this.base}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = await response.json();
    if (body.status !== 'success') throw new Error(`query ${promql} failed: ${JSON.stringify(body)}`);
    return body.data.result;
  }
}

// The PromQL the README shows: the lines of its promql block, and the `expr:` of its alert rules.
function readmePromql() {
  const text = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = text.slice(text.indexOf('## Prometheus'));
  const block = (lang) => (section.match(new RegExp('```' + lang + '\\n([\\s\\S]*?)```')) || [, ''])[1];
  const queries = block('promql').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const alerts = [...section.matchAll(/^\s*expr: (.+)$/gm)].map((m) => m[1].trim());
  return { queries, alerts };
}

// Prometheus on a free port; another program may take the port between the probe and the bind, so
// that case is tried again on a new port.
async function startPrometheus(dir, targets) {
  const configFile = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(configFile, prometheusConfig(targets));
  for (let attempt = 1; ; attempt++) {
    const prom = new PrometheusProcess(configFile, path.join(dir, `tsdb-${attempt}`), await freePort(),
      path.join(dir, `prometheus-${attempt}.log`));
    cleanup.processes.push(prom);
    try {
      await prom.ready();
      return prom;
    } catch (error) {
      await prom.stop();
      if (attempt >= 3 || !/address already in use/.test(prom.log())) throw error;
    }
  }
}

// The series of `metric` for `run` with a value above 0, or a text saying what is missing or wrong.
function findSeries(result, metric, run) {
  const series = result.filter((s) => s.metric.task === run.task);
  if (series.length === 0) {
    const seen = result.map((s) => JSON.stringify(s.metric)).join('; ') || 'none';
    return { missing: `${metric} for task ${JSON.stringify(run.task)} (series seen: ${seen})` };
  }
  if (series.length > 1) return { wrong: `${metric} for ${JSON.stringify(run.task)} has ${series.length} series` };
  const [s] = series;
  if (s.metric.operation !== run.operation || s.metric.vm_size !== run.vmSize) {
    return { wrong: `${metric} for ${JSON.stringify(run.task)} has labels ${JSON.stringify(s.metric)}, ` +
      `expected operation=${run.operation} vm_size=${run.vmSize}` };
  }
  if (s.metric.instance !== hostPort(run.url)) {
    return { wrong: `${metric} for ${JSON.stringify(run.task)} comes from ${s.metric.instance}, not ${hostPort(run.url)}` };
  }
  const value = Number(s.value[1]);
  if (!(value > 0)) return { missing: `${metric} for ${JSON.stringify(run.task)} above 0 (now ${s.value[1]})` };
  return { value };
}

function promtoolFindings(body) {
  const result = spawnSync(opts.promtool, ['check', 'metrics'], { input: body, encoding: 'utf8', timeout: 10000 });
  if (result.error) return `promtool did not run: ${result.error.message}`;
  const said = `${result.stdout}${result.stderr}`.trim();
  if (result.status !== 0 || said !== '') return `promtool check metrics exited ${result.status}: ${said || '(nothing printed)'}`;
  return '';
}

const cleanup = new Cleanup();

async function main() {
  const started = Date.now();
  const problems = [];
  try {
    const dir = cleanup.dir('azops-prometheus-');
    for (const run of RUNS) {
      run.proc = cleanup.azops(['run', '--no-open', '--port', '0', '--status-file', path.join(dir, `${run.operation}.json`),
        '--task', run.task, '--operation', run.operation, '--vm-size', run.vmSize, '--',
        process.execPath, '-e', run.child()], { cwd: dir });
    }
    for (const run of RUNS) {
      run.url = await run.proc.url();
      cleanup.group(Number((await run.proc.waitForOutput(/^pid (\d+)$/m))[1]));
    }

    const prom = await startPrometheus(dir, RUNS.map((r) => hostPort(r.url)));
    const readyAt = Date.now();

    let missing = [];
    const values = new Map();
    await waitFor(async () => {
      missing = [];
      for (const metric of ['azops_progress_ratio', 'azops_cost_usd']) {
        const result = await prom.query(`${metric}{job="azops"}`);
        for (const run of RUNS) {
          const found = findSeries(result, metric, run);
          if (found.wrong) throw new Error(found.wrong);
          if (found.missing) missing.push(found.missing);
          else values.set(`${metric} ${run.task}`, found.value);
        }
      }
      return missing.length === 0;
    }, { timeoutMs: DEADLINE_MS, intervalMs: 500, what: 'both tasks in Prometheus' }).catch((error) => {
      throw new Error(`${error.message}; still missing: ${missing.join(', ')}`);
    });
    const seenAfter = (Date.now() - readyAt) / 1000;

    // Rates differ by size, so each task's cost must come from its own VM's rate.
    const rates = await prom.query('azops_hourly_rate_usd{job="azops"}');
    const rateOf = (run) => findSeries(rates, 'azops_hourly_rate_usd', run);
    const [rate1, rate2] = RUNS.map(rateOf);
    for (const r of [rate1, rate2]) if (r.wrong || r.missing) problems.push(r.wrong || r.missing);
    if (!problems.length && !(rate1.value > rate2.value)) {
      problems.push(`${RUNS[0].vmSize} should cost more an hour than ${RUNS[1].vmSize}: ${rate1.value} vs ${rate2.value}`);
    }

    // The queries the README proposes (its promql block) must evaluate to one figure over these two
    // tasks; its alert expressions find nothing here (no task is stalled or stale) but must be valid.
    const { queries, alerts } = readmePromql();
    if (queries.length < 3 || alerts.length < 2) problems.push(`README: ${queries.length} queries, ${alerts.length} alerts found`);
    for (const q of queries) {
      const result = await prom.query(q);
      if (result.length === 0) problems.push(`README query ${q} gives nothing`);
    }
    for (const q of alerts) await prom.query(q);
    const total = await prom.query('sum(azops_cost_usd)');
    const sumOfTasks = RUNS.reduce((s, r) => s + values.get(`azops_cost_usd ${r.task}`), 0);
    if (total.length && !(Number(total[0].value[1]) > 0)) problems.push(`sum(azops_cost_usd) is ${total[0].value[1]}`);

    let promtoolNote = 'promtool not installed: skipped';
    if (fs.existsSync(opts.promtool)) {
      promtoolNote = 'promtool check metrics: clean on both servers';
      for (const run of RUNS) {
        const body = await (await fetch(new URL('metrics', run.url))).text();
        const findings = promtoolFindings(body);
        if (findings) problems.push(`/metrics of ${JSON.stringify(run.task)}: ${findings}`);
      }
    }

    console.log('azops under Prometheus (scrape_interval 1s), two `azops run` servers');
    for (const run of RUNS) {
      console.log(`  ${JSON.stringify(run.task).padEnd(18)} ${run.operation.padEnd(13)} ${run.vmSize.padEnd(17)} ` +
        `progress ${values.get(`azops_progress_ratio ${run.task}`).toFixed(3)}  ` +
        `cost $${values.get(`azops_cost_usd ${run.task}`).toFixed(6)}  at ${run.url}`);
    }
    console.log(`  both tasks in Prometheus ${seenAfter.toFixed(1)} s after it was ready (deadline ${DEADLINE_MS / 1000} s); ` +
      `sum of the two costs when seen $${sumOfTasks.toFixed(6)}`);
    console.log(`  ${promtoolNote}`);
    console.log(`  whole test ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await cleanup.run();
  }
  if (problems.length) {
    console.error(`FAIL:\n  ${problems.join('\n  ')}`);
    return 1;
  }
  console.log('PASS');
  return 0;
}

const watchdog = failOnHangOrSignal(cleanup, WHOLE_TEST_MS, 'the test');
main().then((code) => {
  clearTimeout(watchdog);
  process.exitCode = code;
}, (error) => {
  clearTimeout(watchdog);
  console.error(`FAIL: ${error.message}`);
  process.exitCode = 1;
});
