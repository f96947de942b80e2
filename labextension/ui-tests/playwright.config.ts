// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Browser tests: Debian's Chromium (Playwright's own browser download cannot
 * work here) against a real Jupyter server, Docker engine and workspace image,
 * started by global-setup.ts.
 */

import * as path from 'path';
import { defineConfig } from '@playwright/test';

const repoRoot = path.resolve(__dirname, '..', '..');
export const artifactsDir = path.join(repoRoot, 'test-artifacts', 'ui');

export default defineConfig({
  testDir: './tests',
  outputDir: path.join(artifactsDir, 'results'),
  globalSetup: require.resolve('./global-setup'),
  // One server, one Docker engine, one machine with two cores: one at a time.
  workers: 1,
  fullyParallel: false,
  forbidOnly: true,
  retries: 0,
  // Creating a container and cloning can take a while on a busy machine.
  timeout: 240_000,
  expect: { timeout: 60_000 },
  reporter: [['list']],
  use: {
    browserName: 'chromium',
    viewport: { width: 1280, height: 800 },
    actionTimeout: 30_000,
    navigationTimeout: 60_000,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      // Playwright starts every browser with a fresh temporary profile.
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync'
      ]
    }
  }
});
