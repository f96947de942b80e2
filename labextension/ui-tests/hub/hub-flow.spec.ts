// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * A JupyterHub user as they would work: log in through the hub's page, open
 * their own JupyterLab (a client of the hub's code-workspaces service, with no
 * Docker of its own), create a workspace from the launcher tile, type a
 * command and read its output; the sidebar lists only their own workspaces.
 */

import { expect, test } from '@playwright/test';
import {
  expectScreen,
  openSidebar,
  shot,
  typeWithoutClicking,
  waitForLab
} from '../tests/helpers';

const hubUrl = process.env.HUB_URL ?? '';
const users = (process.env.HUB_USERS ?? '').split(',').filter(Boolean);
const password = process.env.HUB_PASSWORD ?? '';

test.beforeAll(() => {
  expect(hubUrl, 'HUB_URL (tests/test_hub.py starts the hub)').not.toBe('');
  expect(users.length).toBeGreaterThan(1);
});

for (const user of users) {
  test(`${user} logs in through the hub and works in a workspace`, async ({
    page
  }) => {
    // The hub takes only a path as `next`.
    const lab = new URL(`user/${user}/lab`, hubUrl).pathname;
    await page.goto(`${hubUrl}hub/login?next=${encodeURIComponent(lab)}`);
    await page.locator('input[name="username"]').fill(user);
    await page.locator('input[name="password"]').fill(password);
    await shot(page, `hub-${user}-01-login`);
    await page
      .locator('input[type="submit"], button[type="submit"]')
      .first()
      .click();
    await waitForLab(page);

    const tile = page.locator('.jp-LauncherCard', {
      hasText: 'Code Workspace'
    });
    await expect(tile).toBeVisible();
    await tile.click();
    const dialog = page.locator('.jp-CodeWorkspaces-createDialog');
    await dialog.locator('input[name="name"]').fill(`${user} in the browser`);
    await dialog.locator('.jp-Dialog-footer .jp-mod-accept').click();
    const terminal = page.locator('.jp-CodeWorkspaceTerminal').first();
    await expect(terminal).toBeVisible();
    await expectScreen(terminal, /\$ *$/m);
    await typeWithoutClicking(page, `echo "$(whoami)-on-hub-$((6*7))"`);
    await expectScreen(terminal, /^coder-on-hub-42 *$/m, 60_000);
    await shot(page, `hub-${user}-02-terminal`);

    // The sidebar shows this user's workspaces, and none of anyone else's.
    const sidebar = await openSidebar(page);
    const names = sidebar.locator('.jp-CodeWorkspaces-name');
    await expect(
      names.filter({ hasText: `${user} in the browser` })
    ).toHaveCount(1);
    for (const other of users.filter(name => name !== user)) {
      await expect(
        names.filter({ hasText: `${other} in the browser` })
      ).toHaveCount(0);
    }
    await shot(page, `hub-${user}-03-sidebar`);
  });
}
