// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Least privilege in the browser: a server with the Auth.js identity provider
 * (its own, started here by the shared launcher), sessions minted by the real @auth/core. A person who
 * is not an admin gets JupyterLab without error dialogs and a working Code
 * Workspaces panel, and no kernels or terminals; the admin gets everything.
 */

import { execFileSync } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { startServer, type ITestServer } from '../server';
import { openSidebar, shot, waitForLab } from './helpers';

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const BASE_PATH = '/popebot-authz/';
const COOKIE = 'authjs.session-token';
const SECRET = randomBytes(32).toString('base64url');
const USERS = {
  alice: { sub: 'alice-not-admin', email: 'alice@example.com', name: 'Alice' },
  carol: { sub: 'carol-admin', email: 'carol@example.com', name: 'Carol' }
};

let server: ITestServer;
let baseUrl: string;
const tokens: Record<string, string> = {};

function mint(): void {
  const mintDir = path.join(repoRoot, 'tests', 'authjs');
  if (!fs.existsSync(path.join(mintDir, 'node_modules', '@auth', 'core'))) {
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: mintDir });
  }
  const requests = Object.values(USERS).map(claims => ({
    op: 'encode',
    claims,
    secret: SECRET,
    salt: COOKIE,
    maxAge: 3600
  }));
  const out = execFileSync('node', ['mint.mjs'], {
    cwd: mintDir,
    input: JSON.stringify(requests),
    timeout: 120_000
  });
  const results = JSON.parse(out.toString()) as { token: string }[];
  Object.keys(USERS).forEach((label, i) => (tokens[label] = results[i].token));
}

function sessionHeaders(user: string): Record<string, string> {
  return { Cookie: `${COOKIE}=${tokens[user]}; _xsrf=x`, 'X-XSRFToken': 'x' };
}

async function call(
  user: string,
  method: string,
  urlPath: string
): Promise<number> {
  const response = await fetch(`${baseUrl}${urlPath}`, {
    method,
    headers: sessionHeaders(user)
  });
  return response.status;
}

test.beforeAll(async () => {
  mint();
  server = await startServer({
    basePath: BASE_PATH,
    logName: 'least-privilege-server.log',
    args: [
      '--ServerApp.identity_provider_class=jupyter_popebot_code.auth.authjs.AuthJSIdentityProvider',
      `--CodeWorkspacesApp.admin_users=${USERS.carol.email}`
    ],
    env: { AUTH_SECRET: SECRET },
    headers: sessionHeaders('alice')
  });
  baseUrl = server.baseUrl;
});

test.afterAll(async () => {
  // Each user's workspaces, as themselves (there is no token user on this server).
  for (const user of Object.keys(USERS)) {
    const response = await fetch(`${baseUrl}api/code/workspaces`, {
      headers: sessionHeaders(user)
    });
    const { workspaces } = (await response.json()) as {
      workspaces: { id: string }[];
    };
    for (const { id } of workspaces) {
      await call(user, 'DELETE', `api/code/workspaces/${id}`);
    }
  }
  await server.stop();
});

async function signedIn(
  context: BrowserContext,
  user: string
): Promise<{ page: Page; refused: string[] }> {
  await context.addCookies([
    { name: COOKIE, value: tokens[user], url: baseUrl }
  ]);
  const page = await context.newPage();
  const refused: string[] = [];
  page.on('response', response => {
    if (response.status() === 403) {
      refused.push(`${response.request().method()} ${response.url()}`);
    }
  });
  await page.goto(`${baseUrl}lab`);
  await waitForLab(page);
  return { page, refused };
}

async function createWorkspaceInPanel(page: Page, name: string): Promise<void> {
  const sidebar = await openSidebar(page);
  await sidebar.locator('.jp-CodeWorkspaces-create').click();
  const dialog = page.locator('.jp-CodeWorkspaces-createDialog');
  await expect(dialog).toBeVisible();
  await dialog.locator('input[name="name"]').fill(name);
  await dialog.locator('.jp-Dialog-footer .jp-mod-accept').click();
  await expect(
    sidebar.locator('.jp-CodeWorkspaces-name', { hasText: name })
  ).toBeVisible();
}

test('a non-admin gets JupyterLab without error dialogs, the panel, and nothing else', async ({
  context
}) => {
  const { page, refused } = await signedIn(context, 'alice');
  await createWorkspaceInPanel(page, 'alice-panel');
  // Let JupyterLab's start-up requests (sessions, kernels, contents, ...) settle.
  await page.waitForTimeout(5_000);
  await expect(page.locator('.jp-Dialog')).toHaveCount(0);
  await shot(page, 'least-privilege-non-admin');
  console.log(`refused to the non-admin:\n  ${refused.join('\n  ')}`);
  for (const [method, urlPath] of [
    ['GET', 'api/terminals'],
    ['POST', 'api/terminals'],
    ['GET', 'api/kernels'],
    ['GET', 'api/contents'],
    ['GET', 'api/sessions']
  ]) {
    expect(await call('alice', method, urlPath), urlPath).toBe(403);
  }
});

test('the admin gets JupyterLab, the panel, and terminals and kernels', async ({
  context
}) => {
  const { page } = await signedIn(context, 'carol');
  await createWorkspaceInPanel(page, 'carol-panel');
  await expect(page.locator('.jp-Dialog')).toHaveCount(0);
  // JupyterLab's own terminal works for an admin: File > New > Terminal.
  await page.locator('.lm-MenuBar-item', { hasText: 'File' }).click();
  await page.locator('.lm-Menu-itemLabel', { hasText: /^New$/ }).hover();
  await page.locator('.lm-Menu-itemLabel', { hasText: /^Terminal$/ }).click();
  await expect(page.locator('.jp-Terminal').first()).toBeVisible();
  await shot(page, 'least-privilege-admin');
  for (const urlPath of [
    'api/terminals',
    'api/kernels',
    'api/contents',
    'api/sessions'
  ]) {
    expect(await call('carol', 'GET', urlPath), urlPath).toBe(200);
  }
});
