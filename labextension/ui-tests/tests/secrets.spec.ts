// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The "Code Workspace Secrets" panel as a person uses it, on a server of its
 * own: opened from the sidebar, a bad name answered beside its field, a token
 * saved through a password field that never shows it again, the list of
 * names, and the running workspace's new shells seeing it at once.
 */

import { expect, type Page, test } from '@playwright/test';
import { type ITestServer, startServer } from '../server';
import { api, docker, openLab, openSidebar, runCommand, shot } from './helpers';

test.describe.configure({ mode: 'serial' });

let server: ITestServer;
let page: Page;
const VALUE = `ui-secret-${Date.now().toString(36)}-value`;

test.beforeAll(async ({ browser }) => {
  const image = process.env.WORKSPACE_IMAGE;
  server = await startServer({
    basePath: '/popebot-ui-secrets/',
    args: image ? [`--ContainerManager.image=${image}`] : [],
    logName: 'server-secrets.log'
  });
  page = await browser.newPage();
});

test.afterAll(async () => {
  await page?.close();
  await server?.stop();
});

async function secretsApi(): Promise<{ status: number; text: string }> {
  const response = await fetch(`${server.baseUrl}api/code/secrets`, {
    headers: { Authorization: `token ${server.token}` }
  });
  return { status: response.status, text: await response.text() };
}

test('secrets are added, listed by name, replaced and deleted from the panel', async () => {
  const created = await api(
    'POST',
    '',
    { name: 'secrets', repo: '', branch: '' },
    server
  );
  expect(created.status).toBe(201);
  const container = `code-workspace-${created.json.id}`;

  await openLab(page, server);
  const sidebar = await openSidebar(page);
  await sidebar.locator('.jp-CodeWorkspaces-openSecrets').click();
  const panel = page.locator('.jp-CodeWorkspaces-secrets');
  await expect(panel).toBeVisible();
  await expect(panel.locator('h2')).toHaveText('Code Workspace Secrets');
  await expect(panel.locator('tbody')).toContainText('No secrets yet.');

  // A name the workspace needs: the server's message beside the name field.
  const form = panel.locator('.jp-CodeWorkspaces-secretsForm');
  await form.locator('input[name="name"]').fill('PATH');
  await form.locator('input[name="value"]').fill(VALUE);
  await form.locator('button[type="submit"]').click();
  await expect(
    form.locator('.jp-CodeWorkspaces-fieldError[data-field="name"]')
  ).toContainText('used by the workspace itself');
  // A bad git host: beside its own field.
  await form.locator('input[name="name"]').fill('UI_TOKEN');
  await form.locator('input[name="git_host"]').fill('https://github.com');
  await form.locator('button[type="submit"]').click();
  await expect(
    form.locator('.jp-CodeWorkspaces-fieldError[data-field="git_host"]')
  ).toContainText('git_host must be a host name');
  await expect(
    form.locator('.jp-CodeWorkspaces-fieldError[data-field="name"]')
  ).toHaveCount(0);

  await expect(form.locator('input[name="value"]')).toHaveAttribute(
    'type',
    'password'
  );
  await form.locator('input[name="git_host"]').fill('github.com');
  await form.locator('button[type="submit"]').click();
  const row = panel.locator('tr[data-secret="UI_TOKEN"]');
  await expect(row).toContainText('github.com');
  await expect(panel.locator('[role="status"]')).toContainText(
    'New shells in your workspaces see it within seconds'
  );
  await expect(form.locator('input[name="value"]')).toHaveValue('');
  expect(await panel.innerText()).not.toContain(VALUE);
  await shot(page, '30-secrets-panel');

  const listed = await secretsApi();
  expect(listed.status).toBe(200);
  expect(JSON.parse(listed.text).secrets.map((s: any) => s.name)).toEqual([
    'UI_TOKEN'
  ]);
  expect(listed.text).not.toContain(VALUE);
  // The running workspace's next shell has it, and git answers with it.
  const shell = (script: string) =>
    docker(
      'exec',
      '-u',
      'coder',
      '-e',
      'TTYD_CREDENTIAL=',
      container,
      'bash',
      '-lc',
      script
    );
  expect(shell('printf %s "$UI_TOKEN"')).toBe(VALUE);

  // Replace keeps the name and asks only for a new value; delete removes it.
  await row.locator('button', { hasText: 'Replace' }).click();
  await expect(form.locator('input[name="name"]')).toHaveValue('UI_TOKEN');
  await expect(form.locator('input[name="value"]')).toBeFocused();
  await form.locator('input[name="value"]').fill(`${VALUE}-2`);
  await form.locator('button[type="submit"]').click();
  await expect(panel.locator('[role="status"]')).toContainText(
    'Saved UI_TOKEN'
  );
  expect(shell('printf %s "$UI_TOKEN"')).toBe(`${VALUE}-2`);
  await row.locator('button', { hasText: 'Delete' }).click();
  await expect(row).toHaveCount(0);
  expect(shell('printf "[%s]" "${UI_TOKEN-unset}"')).toBe('[unset]');

  // The command (as the palette runs it) opens the panel again once closed.
  await page
    .locator('.lm-TabBar-tab.lm-mod-current .lm-TabBar-tabCloseIcon')
    .click();
  await expect(page.locator('.jp-CodeWorkspaces-secrets')).toHaveCount(0);
  await runCommand(page, 'popebot-code:secrets');
  await expect(page.locator('.jp-CodeWorkspaces-secrets')).toBeVisible();
  await api('DELETE', `/${created.json.id}`, undefined, server);
});
