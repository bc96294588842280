// Running the real `azops` binary (AZOPS_BIN) for the browser tests and the soak and Prometheus
// scripts: start it, find the dashboard address it prints, read what its child prints, and make sure
// nothing it started outlives a test.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const AZOPS_BIN = process.env.AZOPS_BIN || '';

const URL_RE = /(http:\/\/(?:127\.0\.0\.1|localhost|\[::1\]):\d+\/)/;

// Resolves with what `check` returns once it is truthy; rejects after `timeoutMs` with `what`.
export async function waitFor(check, { timeoutMs = 5000, intervalMs = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export function processGone(pid) {
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    if (error.code === 'ESRCH') return true;
    throw error;
  }
}

// True when no process is left in the process group `pgid`.
export function groupGone(pgid) {
  try {
    process.kill(-pgid, 0);
    return false;
  } catch (error) {
    if (error.code === 'ESRCH') return true;
    throw error;
  }
}

// A child process a script owns: its exit code (or signal) once it has ended, and a stop that cannot
// hang on a child that ignores SIGTERM.
export class OwnedProcess {
  constructor(command, args, spawnOptions) {
    this.exitCode = undefined;
    this.child = spawn(command, args, spawnOptions);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitCode = code === null ? signal : code;
        resolve(this.exitCode);
      });
    });
  }

  get pid() { return this.child.pid; }

  // For a script that must go at once (hung or interrupted): no grace, no waiting.
  kill() { this.child.kill('SIGKILL'); }

  async stop() {
    if (this.exitCode !== undefined) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

// One azops process. `output` is stdout and stderr together, as they arrived. `stdout: 'ignore'`
// throws away what azops echoes of its command, for a command that prints too much to keep.
export class AzopsProcess extends OwnedProcess {
  constructor(args, { cwd, stdout = 'pipe' } = {}) {
    if (!AZOPS_BIN) throw new Error('AZOPS_BIN is not set: point it at the built azops binary');
    if (!fs.existsSync(AZOPS_BIN)) throw new Error(`AZOPS_BIN=${AZOPS_BIN} does not exist`);
    super(AZOPS_BIN, args, { cwd, stdio: ['ignore', stdout, 'pipe'] });
    this.args = args;
    this.output = '';
    this.stdout = '';
    if (this.child.stdout) {
      this.child.stdout.setEncoding('utf8');
      this.child.stdout.on('data', (text) => { this.output += text; this.stdout += text; });
    }
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (text) => { this.output += text; });
  }

  // The dashboard address azops prints once it serves.
  async url(timeoutMs = 10000) {
    return waitFor(() => {
      if (this.exitCode !== undefined) throw new Error(`azops ${this.args.join(' ')} exited (${this.exitCode}) before serving:\n${this.output}`);
      const match = URL_RE.exec(this.output);
      return match && match[1];
    }, { timeoutMs, what: `the dashboard address from azops ${this.args[0]}; output so far:\n${this.output}` });
  }

  // The first match of `re` in the output (e.g. the pid the child prints).
  async waitForOutput(re, timeoutMs = 10000) {
    return waitFor(() => re.exec(this.output), { timeoutMs, what: `${re} in the output of azops; got:\n${this.output}` });
  }
}

// Tracks what a test started, so that an assertion failing halfway leaves no process behind.
export class Cleanup {
  constructor() {
    this.processes = [];
    this.groups = [];
    this.dirs = [];
  }

  azops(args, options) {
    const p = new AzopsProcess(args, options);
    this.processes.push(p);
    return p;
  }

  // A child of azops runs in its own process group, whose id is its pid.
  group(pid) { this.groups.push(pid); }

  dir(prefix) {
    const d = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR || '/tmp'), prefix));
    this.dirs.push(d);
    return d;
  }

  async run() {
    for (const p of this.processes.splice(0)) await p.stop();
    this.killGroupsAndRemoveDirs();
  }

  // The last resort of a hung or interrupted script: SIGKILL to all it tracks that can be killed
  // (entries without `kill` go by other means), without waiting.
  killNow() {
    for (const p of this.processes.splice(0)) if (p.kill) p.kill();
    this.killGroupsAndRemoveDirs();
  }

  killGroupsAndRemoveDirs() {
    for (const pid of this.groups.splice(0)) {
      try { process.kill(-pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    for (const d of this.dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  }
}

// For a script (not a node:test suite) that must fail rather than hang, and leave nothing behind
// when interrupted: after `ms`, or on SIGINT/SIGTERM, prints FAIL, kills what `cleanup` tracks and
// exits 1. Returns the watchdog timer, for the script to clear once it is done.
export function failOnHangOrSignal(cleanup, ms, what) {
  const bail = (why) => {
    console.error(`FAIL: ${why}`);
    cleanup.killNow();
    process.exit(1);
  };
  const watchdog = setTimeout(() => bail(`${what} did not finish within ${ms / 1000} s`), ms);
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => bail(`interrupted by ${signal}`));
  return watchdog;
}

// Replaces the file at once, as the status writer does, so a reader never sees half of it.
export function writeStatusFile(file, status) {
  const temporary = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(temporary, JSON.stringify(status));
  fs.renameSync(temporary, file);
}
