// Debian's Chromium driven by playwright-core: headless, sandbox off (containers), a fresh profile that
// is removed afterwards. JavaScript is off unless asked for: the pages must work at Tor Browser's Safest level.

import fs from 'fs';
import path from 'path';
import { chromium, type BrowserContext, type BrowserContextOptions } from 'playwright-core';
import { ROOT, tmpDir } from './daemon';

export const CHROMIUM = '/usr/bin/chromium';
/** Where screenshots are saved as test artifacts (kept after the run, ignored by git). */
export const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'pages');

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(options: BrowserContextOptions = {}): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/test-setup as root (apt-get install chromium)`);
  const profile = tmpDir('bitdrop-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu'],
    javaScriptEnabled: false,
    acceptDownloads: true,
    ...options,
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

export function artifactPath(name: string): string {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, name);
}
