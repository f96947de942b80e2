// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The running-workspace quota as a person meets it, on a server of its own
 * that allows one running workspace per user (the shared server's default
 * quota is left for the other tests).
 */

import { expect, type Page, test } from '@playwright/test';
import { type ITestServer, startServer } from '../server';
import {
  api,
  docker,
  expectScreen,
  openLab,
  openSidebar,
  PROMPT,
  shot,
  terminalOf
} from './helpers';

test.describe.configure({ mode: 'serial' });

let server: ITestServer;
let page: Page;

const QUOTA_MESSAGE =
  'You already have 1 running workspaces, the most this server allows (1). Stop or delete one first.';

test.beforeAll(async ({ browser }) => {
  // Its containers go on POPEBOT_TEST_NETWORK too (startServer sees to it).
  server = await startServer({
    basePath: '/popebot-ui-quota/',
    args: ['--CodeWorkspacesApp.max_running_workspaces_per_user=1'],
    logName: 'server-quota.log'
  });
  page = await browser.newPage();
});

test.afterAll(async () => {
  await page?.close();
  await server?.stop();
});

test("the quota's message shows in the create dialog and the terminal; Stop makes room", async () => {
  const first = await api(
    'POST',
    '',
    { name: 'quota first', repo: '', branch: '' },
    server
  );
  expect(first.status).toBe(201);
  const firstId: string = first.json.id;
  expect(
    docker('inspect', '-f', '{{.State.Status}}', `code-workspace-${firstId}`)
  ).toBe('running');

  await openLab(page, server);
  const sidebar = await openSidebar(page);
  const items = sidebar.locator('.jp-CodeWorkspaces-item');
  await expect(items).toHaveCount(1);

  // Creating a second one while the first runs: the server's message, in the dialog.
  await sidebar.locator('.jp-CodeWorkspaces-create').click();
  const dialog = page.locator('.jp-CodeWorkspaces-createDialog');
  await dialog.locator('input[name="name"]').fill('quota second');
  await dialog.locator('.jp-Dialog-footer .jp-mod-accept').click();
  const formError = dialog.locator('.jp-CodeWorkspaces-formError');
  await expect(formError).toHaveText(QUOTA_MESSAGE);
  await expect(dialog).toBeVisible();
  await shot(page, '16-quota-create-dialog');

  // Stop the first from the sidebar: now the second can be created.
  await dialog.locator('.jp-Dialog-footer .jp-mod-reject').click();
  await expect(dialog).toHaveCount(0);
  const firstItem = sidebar.locator(
    `.jp-CodeWorkspaces-item[data-workspace-id="${firstId}"]`
  );
  await firstItem.locator('.jp-CodeWorkspaces-stop').click();
  await expect(firstItem).toHaveAttribute('data-status', 'stopped');
  await sidebar.locator('.jp-CodeWorkspaces-create').click();
  await dialog.locator('input[name="name"]').fill('quota second');
  await dialog.locator('.jp-Dialog-footer .jp-mod-accept').click();
  await expect(dialog).toHaveCount(0);
  const second = page.locator('.jp-CodeWorkspaceTerminal').first();
  await expectScreen(second, PROMPT);
  const secondId = (await second.getAttribute('data-workspace-id')) ?? '';
  expect(secondId).not.toBe(firstId);

  // Opening the stopped first one would start a second container: refused,
  // and the terminal's status line says why, with a Retry.
  await firstItem.locator('.jp-CodeWorkspaces-name').click();
  const firstTerminal = terminalOf(page, firstId);
  const status = firstTerminal.locator('.jp-CodeWorkspaceTerminal-status');
  await expect(status).toContainText(
    `Could not open the terminal: ${QUOTA_MESSAGE}`
  );
  const retry = firstTerminal.locator('.jp-CodeWorkspaceTerminal-retry');
  await expect(retry).toHaveText('Retry');
  expect(
    docker('inspect', '-f', '{{.State.Status}}', `code-workspace-${firstId}`)
  ).toBe('exited');
  await shot(page, '17-quota-terminal');

  // Stop the second; Retry on the first now works.
  const secondItem = sidebar.locator(
    `.jp-CodeWorkspaces-item[data-workspace-id="${secondId}"]`
  );
  await secondItem.locator('.jp-CodeWorkspaces-stop').click();
  await expect(secondItem).toHaveAttribute('data-status', 'stopped');
  await retry.click();
  await expect(status).toBeHidden({ timeout: 120_000 });
  await expectScreen(firstTerminal, PROMPT);
  expect(
    (await api('GET', `/${firstId}`, undefined, server)).json.container.status
  ).toBe('running');
});
