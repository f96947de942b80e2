// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Workspace profiles as a person meets them, on a server of its own that
 * offers two: the create dialog's picker, and the profile in the sidebar. The
 * container runs with the chosen profile's limits.
 */

import { expect, type Page, test } from '@playwright/test';
import { type ITestServer, startServer } from '../server';
import { docker, openLab, openSidebar, shot } from './helpers';

test.describe.configure({ mode: 'serial' });

const IMAGE =
  process.env.WORKSPACE_IMAGE ?? 'jupyter-popebot-code-workspace:latest';
const PROFILES = [
  {
    slug: 'standard',
    display_name: 'Standard',
    description: 'the usual tools',
    image: IMAGE,
    default: true
  },
  {
    slug: 'small',
    display_name: 'Small machine',
    description: 'for quick edits',
    image: IMAGE,
    limits: { cpus: 0.5, memory: '384m', pids: 200 }
  }
];

let server: ITestServer;
let page: Page;

test.beforeAll(async ({ browser }) => {
  server = await startServer({
    basePath: '/popebot-ui-profiles/',
    args: [`--CodeWorkspacesApp.profiles=${JSON.stringify(PROFILES)}`],
    logName: 'server-profiles.log'
  });
  page = await browser.newPage();
});

test.afterAll(async () => {
  await page?.close();
  await server?.stop();
});

test('pick a profile in the create dialog; the sidebar shows it', async () => {
  await openLab(page, server);
  const sidebar = await openSidebar(page);
  await sidebar.locator('.jp-CodeWorkspaces-create').click();
  const dialog = page.locator('.jp-CodeWorkspaces-createDialog');
  const picker = dialog.locator('select[name="profile"]');
  await expect(picker).toHaveValue('standard'); // the default
  await expect(picker.locator('option')).toHaveText([
    'Standard',
    'Small machine'
  ]);
  await picker.selectOption('small');
  await expect(dialog.locator('.jp-CodeWorkspaces-hint').last()).toHaveText(
    'for quick edits · 0.5 CPUs, 384m memory, 200 processes'
  );
  await dialog.locator('input[name="name"]').fill('profiled');
  await shot(page, '30-profile-picker');
  await dialog.locator('.jp-Dialog-footer .jp-mod-accept').click();
  await expect(dialog).toHaveCount(0);

  const item = sidebar.locator('.jp-CodeWorkspaces-item', {
    hasText: 'profiled'
  });
  await expect(item.locator('.jp-CodeWorkspaces-profile')).toHaveText('small');
  const id = await item.getAttribute('data-workspace-id');
  expect(id).toBeTruthy();
  expect(
    docker(
      'inspect',
      '-f',
      '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}',
      `code-workspace-${id}`
    )
  ).toBe(`${384 * 1024 * 1024} 500000000 200`);
  await shot(page, '31-profile-in-sidebar');
});
