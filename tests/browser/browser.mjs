// Headless Chromium for the dashboard tests: Debian's /usr/bin/chromium (override with
// AZOPS_CHROMIUM) driven by playwright-core, in a fresh profile that is removed on close.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.AZOPS_CHROMIUM || '/usr/bin/chromium';

const ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

// Returns { context, close }. Every page of `context` shares one profile directory made for this call.
// `extraArgs` go to Chromium after the defaults (e.g. --host-resolver-rules to give a name an address).
export async function launchBrowser({ width = 1366, height = 768, extraArgs = [] } = {}) {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set AZOPS_CHROMIUM)`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'azops-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...ARGS, ...extraArgs],
    viewport: { width, height },
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

// One Chromium for many contexts: `browser.newContext()` gives each its own cookies and its own
// connection pool (Chromium opens at most 6 HTTP/1.1 connections to one host per context, and each
// page's event stream holds one of them).
export async function launchChromium() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set AZOPS_CHROMIUM)`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  return { browser, close: () => browser.close() };
}
