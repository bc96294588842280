// The soak's child command: a BuildKit `--progress=plain` build of a Windows-Agent-Arena-like image
// (21 stage-0 steps) whose RUN steps print RATE lines a second, spread over SECONDS, then the export
// and exit 0. Lines are made up but in BuildKit's shapes (`#19 12.345 Get:7 http://…`), a few with
// colours, so that azops' sanitiser and docker parser do their real work. The content is
// deterministic; only the pace follows the clock.
//
//   node buildkit_child.mjs --seconds 300 --rate 3000 --pid-file F --summary F
//                           [--start-when F] [--finish-when F]
//
// The build starts once the file --start-when names exists, and its export ends once the file
// --finish-when names exists (each at once when not given): whoever watches says when.
// --pid-file gets this process's id at once (azops runs it in its own process group, whose id it is).
// --summary gets {"lines": N, "seconds": S, "last_line": "..."} at the end, S being the time the
// steps took (without the wait in the export). Writes to stdout block while azops does not read, so
// a slow reader slows the child rather than losing lines.
import fs from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    rate: { type: 'string', default: '3000' },
    'pid-file': { type: 'string' },
    summary: { type: 'string' },
    'start-when': { type: 'string' },
    'finish-when': { type: 'string' },
  },
});
const SECONDS = Number(opts.seconds);
const RATE = Number(opts.rate);
const EXPORT_SECONDS = 1;
if (opts['pid-file']) fs.writeFileSync(opts['pid-file'], `${process.pid}\n`);

// Ten minutes without the file means whoever was to write it is gone.
async function waitForFile(file) {
  const giveUp = Date.now() + 600000;
  while (file && !fs.existsSync(file)) {
    if (Date.now() > giveUp) process.exit(3);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

let state = 0x2545F4914F6CDD1Dn;
const mask = (1n << 64n) - 1n;
function below(n) {
  state ^= (state << 13n) & mask;
  state ^= state >> 7n;
  state ^= (state << 17n) & mask;
  return Number(state % BigInt(n));
}
const pick = (list) => list[below(list.length)];

const DEBS = ['python3.11', 'libpython3.11-stdlib', 'python3-pip', 'python3-venv', 'tesseract-ocr', 'libtesseract5',
  'liblept5', 'libgl1', 'libglib2.0-0', 'ca-certificates', 'libexpat1', 'xvfb', 'libnss3', 'fonts-liberation'];
const WHEELS = ['gymnasium', 'torch', 'numpy', 'requests', 'flask', 'pillow', 'transformers', 'opencv-python-headless',
  'playwright', 'pyautogui', 'easyocr', 'tiktoken', 'openai', 'scipy', 'pydantic', 'fastapi', 'uvicorn', 'psutil', 'lxml'];
const version = () => `${1 + below(9)}.${below(40)}.${below(12)}`;

// What each kind of RUN prints, one line at a time.
const OUTPUT = {
  apt: () => pick([
    () => `Get:${1 + below(240)} http://deb.debian.org/debian bookworm/main amd64 ${pick(DEBS)} amd64 ${version()}-${1 + below(4)} [${1 + below(9000)} kB]`,
    () => `Unpacking ${pick(DEBS)}:amd64 (${version()}-1) ...`,
    () => `Setting up ${pick(DEBS)}:amd64 (${version()}-1) ...`,
    () => `Selecting previously unselected package ${pick(DEBS)}:amd64.`,
    () => `Preparing to unpack .../${pick(DEBS)}_${version()}-1_amd64.deb ...`,
  ])(),
  pip: () => pick([
    () => `Collecting ${pick(WHEELS)}==${version()}`,
    () => `  Downloading ${pick(WHEELS)}-${version()}-py3-none-any.whl (${1 + below(800)}.${below(10)} MB)`,
    () => `     \x1b[38;5;237m━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━\x1b[0m \x1b[32m${below(100)}.${below(10)}/100.0 MB\x1b[0m \x1b[31m${below(90)}.${below(10)} MB/s\x1b[0m eta \x1b[36m0:00:0${below(10)}\x1b[0m`,
    () => `Requirement already satisfied: ${pick(WHEELS)}>=${version()} in /opt/venv/lib/python3.11/site-packages`,
    () => `Installing collected packages: ${pick(WHEELS)}, ${pick(WHEELS)}, ${pick(WHEELS)}`,
  ])(),
  playwright: () => pick([
    () => `|${'■'.repeat(below(40))}${' '.repeat(8)}| ${below(100)}% of 150.3 MiB`,
    () => `Downloading Chromium 127.0.6533.17 (playwright build v1124) from https://playwright.azureedge.net/builds/chromium/1124/chromium-linux.zip`,
    () => `Get:${1 + below(120)} http://deb.debian.org/debian bookworm/main amd64 ${pick(DEBS)} amd64 ${version()} [${1 + below(900)} kB]`,
  ])(),
};

// The image's 21 steps; `output` names what a RUN prints, absent for steps that print nothing.
const STEPS = [
  { text: 'FROM docker.io/dockurr/windows:latest@sha256:0c5b7e2a94d1f38e6a7b0c9d2e4f61a8b3c5d7e9f0a1b2c3d4e5f60718293a4b', cached: true },
  { text: 'COPY --from=windowsarena/winarena:latest /entry.sh /entry.sh' },
  { text: 'COPY --from=windowsarena/winarena:latest /entry_setup.sh /entry_setup.sh' },
  { text: 'COPY --from=windowsarena/winarena:latest /client /client' },
  { text: 'COPY --from=windowsarena/winarena:latest /models /models' },
  { text: 'COPY start_waa_server.bat /oem/start_waa_server.bat' },
  { text: 'RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip python3-venv tesseract-ocr', output: 'apt' },
  { text: "RUN sed -i 's/20.20.20.21/172.30.0.2/g' /entry_setup.sh" },
  { text: 'RUN python3 -m venv /opt/venv' },
  { text: 'RUN /opt/venv/bin/pip install --no-cache-dir --upgrade pip wheel', output: 'pip' },
  { text: 'COPY requirements.txt /client/requirements.txt' },
  { text: 'RUN /opt/venv/bin/pip install --no-cache-dir -r /client/requirements.txt', output: 'pip' },
  { text: 'RUN /opt/venv/bin/pip install --no-cache-dir torch --index-url https://download.pytorch.org/whl/cpu', output: 'pip' },
  { text: 'RUN /opt/venv/bin/playwright install --with-deps chromium', output: 'playwright' },
  { text: 'COPY api_agent.py /client/mm_agents/navi/api_agent.py' },
  { text: 'RUN apt-get install -y --no-install-recommends xvfb libnss3 fonts-liberation', output: 'apt' },
  { text: 'RUN /opt/venv/bin/pip install --no-cache-dir -r /client/requirements-extra.txt', output: 'pip' },
  { text: 'COPY install.bat /oem/install.bat' },
  { text: "RUN sed -i 's|<AutoLogon>|<AutoLogon><Password><Value>docker</Value></Password>|' /run/assets/win11x64-enterprise-eval.xml" },
  { text: 'RUN rm -rf /root/.cache/pip /var/lib/apt/lists/*' },
  { text: 'RUN chmod +x /entry.sh /entry_setup.sh /start_client.sh' },
];
const TOTAL = STEPS.length;
const printing = STEPS.filter((s) => s.output);
const sliceSeconds = Math.max(0.1, (SECONDS - EXPORT_SECONDS) / printing.length);

await waitForFile(opts['start-when']);
const started = Date.now();
const elapsed = () => (Date.now() - started) / 1000;
let lines = 0;
let lastLine = '';
let vertex = 4;  // BuildKit's vertex numbers: #1-#4 are the internal loads
let buffer = [];

function emit(line) {
  buffer.push(line);
  lines += 1;
  lastLine = line;
}
// Whole writes, waiting while the pipe is full (stdout may have been left non-blocking).
function flush() {
  let bytes = Buffer.from(buffer.length ? `${buffer.join('\n')}\n` : '');
  buffer = [];
  while (bytes.length) {
    try {
      bytes = bytes.subarray(fs.writeSync(1, bytes));
    } catch (error) {
      if (error.code !== 'EAGAIN') throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
    }
  }
}
function header(index) {
  vertex += 1;
  emit('');
  emit(`#${vertex} [stage-0 ${String(index + 1).padStart(2)}/${TOTAL}] ${STEPS[index].text}`);
}

emit('#0 building with "default" instance using docker driver');
emit('');
emit('#1 [internal] load build definition from Dockerfile');
emit('#1 transferring dockerfile: 3.07kB done');
emit('#1 DONE 0.0s');
emit('');
emit('#2 [internal] load metadata for docker.io/dockurr/windows:latest');
emit('#2 DONE 0.8s');
emit('');
emit('#3 [internal] load .dockerignore');
emit('#3 transferring context: 2B done');
emit('#3 DONE 0.0s');
emit('');
emit('#4 [internal] load build context');
emit('#4 transferring context: 21.4kB done');
emit('#4 DONE 0.0s');

// Steps up to the next printing one go at once; a printing step then fills its slice of the time.
let index = 0;
for (let slice = 0; slice < printing.length; slice++) {
  for (; !STEPS[index].output; index++) {
    header(index);
    emit(STEPS[index].cached ? `#${vertex} CACHED` : `#${vertex} DONE 0.${1 + below(8)}s`);
  }
  header(index);
  const stepStarted = elapsed();
  const sliceEnd = (slice + 1) * sliceSeconds;
  const produce = OUTPUT[STEPS[index].output];
  let done = Math.floor(stepStarted * RATE);
  for (let now = elapsed(); now < sliceEnd; now = elapsed()) {
    const due = Math.floor(Math.min(now, sliceEnd) * RATE);
    for (; done < due; done++) emit(`#${vertex} ${(elapsed() - stepStarted).toFixed(3)} ${produce()}`);
    flush();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  emit(`#${vertex} DONE ${(elapsed() - stepStarted).toFixed(1)}s`);
  index += 1;
}
for (; index < TOTAL; index++) {
  header(index);
  emit(`#${vertex} DONE 0.${1 + below(8)}s`);
}
flush();

const exportStarted = elapsed();
const stepsSeconds = exportStarted;
vertex += 1;
emit('');
emit(`#${vertex} exporting to image`);
emit(`#${vertex} exporting layers`);
flush();
await new Promise((resolve) => setTimeout(resolve, Math.max(0, (SECONDS - elapsed()) * 1000)));
await waitForFile(opts['finish-when']);
emit(`#${vertex} exporting layers ${(elapsed() - exportStarted).toFixed(1)}s done`);
emit(`#${vertex} writing image sha256:7a0e4c1b9d2f3a5e6c8b0d1f2a4c6e8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c done`);
emit(`#${vertex} naming to docker.io/library/waa-auto:latest done`);
emit(`#${vertex} DONE ${(elapsed() - exportStarted).toFixed(1)}s`);
flush();
if (opts.summary) fs.writeFileSync(opts.summary, JSON.stringify({ lines, seconds: stepsSeconds, last_line: lastLine }));
