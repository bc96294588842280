// One of the soak's status-file readers, in a process of its own as another viewer would be: reads
// and parses the status file every INTERVAL ms until the soak sends "stop" over IPC, then sends back
// what it saw and exits. A read is unparsable when it is not JSON, invalid when it is JSON but not an
// azops.status/1 document; either means a reader saw a half-written or broken file.
//
//   forked by soak.mjs: status_reader.mjs STATUS_FILE [INTERVAL_MS]
import fs from 'node:fs';

const [file, intervalText = '10'] = process.argv.slice(2);
const INTERVAL_MS = Number(intervalText);
const STATES = new Set(['idle', 'running', 'succeeded', 'failed', 'cancelled']);

const seen = {
  reads: 0, unparsable: 0, invalid: 0, missing: 0, otherErrors: 0,
  // The oldest heartbeat a read found while the task ran, in seconds: a viewer calls it stale past 10.
  maxHeartbeatAge: 0,
  states: {}, firstProblem: null,
};

function problem(what) {
  if (!seen.firstProblem) seen.firstProblem = what;
}

function check(doc) {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return 'not an object';
  if (doc.schema !== 'azops.status/1') return `schema ${JSON.stringify(doc.schema)}`;
  if (!STATES.has(doc.state)) return `state ${JSON.stringify(doc.state)}`;
  if (typeof doc.progress_pct !== 'number' || doc.progress_pct < 0 || doc.progress_pct > 100) return `progress_pct ${doc.progress_pct}`;
  if (!Array.isArray(doc.log_tail) || doc.log_tail.length > 50) return 'log_tail is not an array of at most 50 lines';
  if (typeof doc.updated_at !== 'string' || Number.isNaN(Date.parse(doc.updated_at))) return `updated_at ${doc.updated_at}`;
  return '';
}

function readOnce() {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    // Before the first write the file may not exist yet; after it, a missing file is a fault.
    if (error.code === 'ENOENT') {
      if (seen.reads > 0) {
        seen.missing += 1;
        problem('the status file vanished between two reads');
      }
    } else {
      seen.otherErrors += 1;
      problem(`read failed: ${error.message}`);
    }
    return;
  }
  seen.reads += 1;
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    seen.unparsable += 1;
    problem(`unparsable (${error.message}): ${JSON.stringify(text.slice(0, 200))}`);
    return;
  }
  const wrong = check(doc);
  if (wrong) {
    seen.invalid += 1;
    problem(`not a status document: ${wrong}`);
    return;
  }
  seen.states[doc.state] = (seen.states[doc.state] || 0) + 1;
  if (doc.state === 'running') {
    seen.maxHeartbeatAge = Math.max(seen.maxHeartbeatAge, (Date.now() - Date.parse(doc.updated_at)) / 1000);
  }
  seen.last = { state: doc.state, step: doc.step, total_steps: doc.total_steps, progress_pct: doc.progress_pct };
}

const timer = setInterval(readOnce, INTERVAL_MS);
process.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  readOnce();
  process.send(seen, () => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
