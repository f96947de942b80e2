// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Least privilege in the browser: a server with the Auth.js identity provider
 * (its own, started here), sessions minted by the real @auth/core. A person who
 * is not an admin gets JupyterLab without error dialogs and a working Code
 * Workspaces panel, and no kernels or terminals; the admin gets everything.
 */

import { execFileSync, spawn, type ChildProcess } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { openSidebar, shot, waitForLab } from './helpers';

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const BASE_PATH = '/popebot-authz/';
const COOKIE = 'authjs.session-token';
const SECRET = randomBytes(32).toString('base64url');
const USERS = {
  alice: { sub: 'alice-not-admin', email: 'alice@example.com', name: 'Alice' },
  carol: { sub: 'carol-admin', email: 'carol@example.com', name: 'Carol' }
};

let server: ChildProcess;
let tmp: string;
let baseUrl: string;
const tokens: Record<string, string> = {};

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

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

async function call(
  user: string,
  method: string,
  urlPath: string
): Promise<number> {
  const response = await fetch(`${baseUrl}${urlPath}`, {
    method,
    headers: {
      Cookie: `${COOKIE}=${tokens[user]}; _xsrf=x`,
      'X-XSRFToken': 'x'
    }
  });
  return response.status;
}

test.beforeAll(async () => {
  mint();
  const port = await freePort();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'popebot-authz-'));
  const root = path.join(tmp, 'root');
  fs.mkdirSync(root);
  const labConfig = path.join(tmp, 'config', 'labconfig');
  fs.mkdirSync(labConfig, { recursive: true });
  fs.writeFileSync(
    path.join(labConfig, 'page_config.json'),
    JSON.stringify({
      disabledExtensions: {
        '@jupyterlab/apputils-extension:announcements': true
      }
    })
  );
  const log = fs.openSync(path.join(tmp, 'server.log'), 'w');
  const jupyter = process.env.JUPYTER ?? 'jupyter';
  server = spawn(
    jupyter,
    [
      'lab',
      '--no-browser',
      '--allow-root',
      '--ServerApp.ip=127.0.0.1',
      `--ServerApp.port=${port}`,
      '--ServerApp.port_retries=0',
      `--ServerApp.base_url=${BASE_PATH}`,
      '--ServerApp.identity_provider_class=jupyter_popebot_code.authjs.AuthJSIdentityProvider',
      `--CodeWorkspacesApp.admin_users=${USERS.carol.email}`,
      `--ServerApp.root_dir=${root}`,
      `--CodeWorkspacesApp.db_path=${path.join(tmp, 'workspaces.sqlite')}`,
      `--ContainerManager.network=${process.env.POPEBOT_TEST_NETWORK ?? 'jupyter-popebot-code'}`,
      `--LabApp.user_settings_dir=${path.join(tmp, 'settings')}`,
      `--LabApp.workspaces_dir=${path.join(tmp, 'lab-workspaces')}`
    ],
    {
      cwd: root,
      detached: true,
      stdio: ['ignore', log, log],
      env: {
        ...process.env,
        AUTH_SECRET: SECRET,
        JUPYTER_CONFIG_DIR: path.join(tmp, 'config'),
        JUPYTER_RUNTIME_DIR: path.join(tmp, 'runtime')
      }
    }
  );
  baseUrl = `http://127.0.0.1:${port}${BASE_PATH}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      if ((await call('alice', 'GET', 'api/code/workspaces')) === 200) {
        break;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || server.exitCode !== null) {
      throw new Error(`server did not start; log: ${tmp}/server.log`);
    }
    await new Promise(resolve => setTimeout(resolve, 500));
  }
});

test.afterAll(async () => {
  for (const user of Object.keys(USERS)) {
    const response = await fetch(`${baseUrl}api/code/workspaces`, {
      headers: { Cookie: `${COOKIE}=${tokens[user]}` }
    });
    const { workspaces } = (await response.json()) as {
      workspaces: { id: string }[];
    };
    for (const { id } of workspaces) {
      await call(user, 'DELETE', `api/code/workspaces/${id}`);
    }
  }
  const stopped = new Promise(resolve => server.once('exit', resolve));
  process.kill(-server.pid!, 'SIGTERM');
  await Promise.race([stopped, new Promise(r => setTimeout(r, 20_000))]);
  if (server.exitCode === null && server.signalCode === null) {
    process.kill(-server.pid!, 'SIGKILL');
  }
  const artifacts = path.join(repoRoot, 'test-artifacts', 'ui');
  fs.mkdirSync(artifacts, { recursive: true });
  fs.copyFileSync(
    path.join(tmp, 'server.log'),
    path.join(artifacts, 'least-privilege-server.log')
  );
  fs.rmSync(tmp, { recursive: true, force: true });
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
