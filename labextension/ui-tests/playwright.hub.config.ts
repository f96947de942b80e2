// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The JupyterHub flow in Chromium. Run by tests/test_hub.py (which starts a
 * real hub and passes HUB_URL, HUB_USERS and HUB_PASSWORD), never by run.sh.
 */

import { defineConfig } from '@playwright/test';
import base from './playwright.config';

export default defineConfig({
  ...base,
  testDir: './hub',
  globalSetup: undefined
});
