// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Running workspaces in JupyterLab's running-sessions panel, in a real
 * browser against the real server, engine and image: listed there, stopped
 * from there, and the sidebar follows.
 */

import { expect, type Locator, type Page, test } from '@playwright/test';
import { api, docker, openLab, openSidebar, shot } from './helpers';

test.describe.configure({ mode: 'serial' });

let page: Page;
let workspaceId = '';
const NAME = 'ui-test running panel';

test.beforeAll(async ({ browser }) => {
  page = await browser.newPage();
  const created = await api('POST', '', { name: NAME, repo: '', branch: '' });
  expect(created.status).toBe(201);
  workspaceId = created.json.id;
});

test.afterAll(async () => {
  await page.close();
  if (workspaceId) {
    await api('DELETE', `/${workspaceId}`);
  }
});

async function openRunningPanel(): Promise<Locator> {
  const panel = page.locator('#jp-running-sessions');
  if (!(await panel.isVisible())) {
    await page
      .locator('.jp-SideBar .lm-TabBar-tab[data-id="jp-running-sessions"]')
      .click();
  }
  await expect(panel).toBeVisible();
  return panel;
}

function containerStatus(): string {
  return docker(
    'inspect',
    '-f',
    '{{.State.Status}}',
    `code-workspace-${workspaceId}`
  );
}

test('a running workspace is listed in its own section, and stop all asks first', async () => {
  await openLab(page);
  const panel = await openRunningPanel();
  const title = panel.locator('.jp-AccordionPanel-title', {
    hasText: 'Code Workspaces'
  });
  await expect(title).toBeVisible();
  const item = panel.locator(
    `.jp-RunningSessions-item[data-context="${workspaceId}"]`
  );
  await expect(item).toBeVisible();
  await expect(item.locator('.jp-RunningSessions-itemLabel')).toHaveText(NAME);
  await shot(page, 'running-01-listed');

  // "Stop All" names what it would stop and does nothing when cancelled.
  await title.locator('.jp-RunningSessions-shutdownAll').click();
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toContainText(NAME);
  await expect(dialog).toContainText('files are kept');
  await shot(page, 'running-02-stop-all-asks');
  await dialog.locator('.jp-mod-reject').click();
  await expect(dialog).toHaveCount(0);
  await expect(item).toBeVisible();
  expect(containerStatus()).toBe('running');
});

test('stop from the running panel stops the container; the sidebar follows', async () => {
  const panel = await openRunningPanel();
  const item = panel.locator(
    `.jp-RunningSessions-item[data-context="${workspaceId}"]`
  );
  // The sidebar, hidden behind the running panel, shows it running.
  const inSidebar = page.locator(
    `#jp-CodeWorkspaces-sidebar .jp-CodeWorkspaces-item[data-workspace-id="${workspaceId}"]`
  );
  await expect(inSidebar).toHaveAttribute('data-status', 'running');

  await item.hover();
  await item.locator('.jp-RunningSessions-itemShutdown').click();
  await expect(item).toHaveCount(0);
  await expect.poll(containerStatus).toBe('exited');
  // The sidebar's model is the panel's: it shows the stop before it is opened.
  await expect(inSidebar).toHaveAttribute('data-status', 'stopped');
  await shot(page, 'running-03-stopped');

  const sidebar = await openSidebar(page);
  await expect(
    sidebar.locator(
      `.jp-CodeWorkspaces-item[data-workspace-id="${workspaceId}"]`
    )
  ).toHaveAttribute('data-status', 'stopped');
});
