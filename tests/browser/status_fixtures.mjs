// Status documents (schema azops.status/1, DESIGN.md) for the page's tests: a WAA setup in the middle
// of its docker build, and the variants a viewer must make clear (failed, cancelled, stale, stalled,
// rate unknown). Times are relative to `now` so that heartbeats are fresh unless a fixture says not.

const iso = (ms) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

const BUILD_LOG = [
  'Step 1/12 : FROM windowsarena/winarena-base:latest',
  ' ---> 4c3b2a190d7e',
  'Step 2/12 : ARG DEBIAN_FRONTEND=noninteractive',
  ' ---> Using cache',
  ' ---> 9a8d6f1e2b3c',
  'Step 3/12 : RUN apt-get update && apt-get install -y --no-install-recommends qemu-utils wget unzip',
  ' ---> Running in 0f1e2d3c4b5a',
  'Get:1 http://deb.debian.org/debian bookworm InRelease [151 kB]',
  'Get:2 http://deb.debian.org/debian bookworm-updates InRelease [55.4 kB]',
  'Fetched 9083 kB in 2s (4127 kB/s)',
  'Reading package lists...',
  'Setting up qemu-utils (1:7.2+dfsg-7+deb12u6) ...',
  'Removing intermediate container 0f1e2d3c4b5a',
  ' ---> 2d4f6a8c0e1b',
  'Step 4/12 : COPY src/win-arena-container/client /client',
  ' ---> 7e5d3c1b9a8f',
  'Step 5/12 : WORKDIR /client',
  ' ---> Running in 6b5a4c3d2e1f',
  'Removing intermediate container 6b5a4c3d2e1f',
  ' ---> 1a2b3c4d5e6f',
  'Step 6/12 : RUN pip install --no-cache-dir -r requirements.txt',
  ' ---> Running in 3c2b1a0f9e8d',
  'Collecting torch==2.1.2',
  '  Downloading torch-2.1.2-cp310-cp310-manylinux1_x86_64.whl (670.2 MB)',
  'WARNING: Running pip as the \'root\' user can result in broken permissions',
  'Collecting transformers==4.36.2',
  'Collecting easyocr==1.7.1',
  'Installing collected packages: mpmath, typing-extensions, sympy, networkx, jinja2, fsspec, filelock, torch',
  'Successfully installed easyocr-1.7.1 torch-2.1.2 transformers-4.36.2',
  'Removing intermediate container 3c2b1a0f9e8d',
  ' ---> 5f4e3d2c1b0a',
  'Step 7/12 : RUN python -m easyocr.download --lang en',
  ' ---> Running in 8e7d6c5b4a39',
  'Downloading detection model, please wait. This may take several minutes depending upon your network connection.',
  'Progress: |██████████████████████████████████████████████████| 100.0% Complete',
  'Downloading recognition model, please wait.',
  'Progress: |██████████████████████████░░░░░░░░░░░░░░░░░░░░░░░░| 52.3% Complete',
];

export function baseStatus(now = Date.now()) {
  const started = now - 19 * 60 * 1000 - 25 * 1000;
  const t = (offsetS) => iso(started + offsetS * 1000);
  return {
    schema: 'azops.status/1',
    task: 'setup-waa',
    operation: 'docker_build',
    phase: 'step_7_of_12',
    step: 7,
    total_steps: 12,
    progress_pct: 42.6,
    detail: 'RUN python -m easyocr.download --lang en',
    log_tail: BUILD_LOG.slice(-50),
    started_at: t(0),
    elapsed_seconds: 19 * 60 + 25,
    updated_at: iso(now),
    state: 'running',
    eta_seconds: 26 * 60,
    eta_low_seconds: 21 * 60,
    eta_high_seconds: 34 * 60,
    eta_source: 'blend',
    cost_usd: 0.146,
    hourly_rate_usd: 0.452,
    projected_cost_usd: 0.342,
    rate_source: 'built-in table: Standard_D8ds_v5, Linux, eastus',
    rate_known: true,
    billing_assumed: false,
    vm_name: 'waa-eval-01',
    vm_size: 'Standard_D8ds_v5',
    region: 'eastus',
    vm_ip: '20.84.117.42',
    vm_state: 'running',
    vnc_url: null,
    error: null,
    cancellable: true,
    stalled_seconds: null,
    stalled_cost_usd: null,
    idle_deallocate_at: null,
    notice: null,
    status_file: '/home/ops/waa/benchmark_results/azure_ops_status.json',
    timeline: [
      { name: 'vm_create', state: 'succeeded', started_at: t(0), ended_at: t(192), duration_seconds: 192 },
      { name: 'docker_install', state: 'succeeded', started_at: t(192), ended_at: t(472), duration_seconds: 280 },
      { name: 'docker_build', state: 'running', started_at: t(472), ended_at: null, duration_seconds: 19 * 60 + 25 - 472 },
    ],
  };
}

// Every fixture a person must be able to tell apart at a glance.
export function fixture(kind, now = Date.now()) {
  const s = baseStatus(now);
  switch (kind) {
    case 'running':
      return s;
    case 'vnc':
      return { ...s, operation: 'windows_boot', phase: 'booting_windows', step: 3, total_steps: 4, progress_pct: 71.3,
        detail: '❯ Booting Windows using QEMU v8.2.2...', vnc_url: 'http://127.0.0.1:8006/' };
    case 'failed': {
      const end = { ...s.timeline[2], state: 'failed', ended_at: s.updated_at };
      return { ...s, state: 'failed', cancellable: false, eta_seconds: null, eta_low_seconds: null, eta_high_seconds: null,
        projected_cost_usd: s.cost_usd, timeline: [s.timeline[0], s.timeline[1], end],
        error: 'the command exited with code 1: pip install failed: No space left on device (/var/lib/docker)',
        log_tail: [...s.log_tail, 'ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device',
          'The command \'/bin/sh -c pip install --no-cache-dir -r requirements.txt\' returned a non-zero code: 1'] };
    }
    case 'cancelled': {
      const end = { ...s.timeline[2], state: 'cancelled', ended_at: s.updated_at };
      return { ...s, state: 'cancelled', cancellable: false, eta_seconds: null, projected_cost_usd: s.cost_usd,
        error: 'stopped on request; the command was killed by SIGTERM', vm_state: 'deallocated',
        timeline: [s.timeline[0], s.timeline[1], end] };
    }
    case 'succeeded': {
      const end = { ...s.timeline[2], state: 'succeeded', ended_at: s.updated_at };
      return { ...s, state: 'succeeded', cancellable: false, progress_pct: 100, step: 12, eta_seconds: 0,
        projected_cost_usd: s.cost_usd, timeline: [s.timeline[0], s.timeline[1], end],
        log_tail: [...s.log_tail, 'Successfully built 5f4e3d2c1b0a', 'Successfully tagged winarena:latest'] };
    }
    case 'stale':
      return { ...s, updated_at: iso(now - 4 * 60 * 1000 - 12 * 1000) };
    case 'stalled':
      return { ...s, stalled_seconds: 14 * 60, stalled_cost_usd: 0.105,
        notice: 'idle: the VM will be deallocated in 16 min unless output resumes' ,
        idle_deallocate_at: iso(now + 16 * 60 * 1000) };
    case 'rate-unknown':
      return { ...s, rate_known: false, cost_usd: null, hourly_rate_usd: null, projected_cost_usd: null,
        rate_source: 'no price for Standard_NC4as_T4_v3 in westeurope', vm_size: 'Standard_NC4as_T4_v3',
        region: 'westeurope', vm_state: null, billing_assumed: true };
    default:
      throw new Error(`unknown fixture ${kind}`);
  }
}

export const FIXTURES = ['running', 'vnc', 'failed', 'cancelled', 'succeeded', 'stale', 'stalled', 'rate-unknown'];
