// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Previews of web apps running in a workspace, as a person uses them: servers
 * started in the workspace's terminal show up under it in the sidebar, open in
 * a sandboxed panel or a browser tab, and a hostile page served from the
 * workspace cannot use the person's Jupyter session. Real server, engine,
 * workspace image and Chromium; the tests run in order on one workspace.
 */

import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { expect, type Locator, type Page, test } from '@playwright/test';
import {
  api,
  baseUrl,
  expectScreen,
  openLab,
  openSidebar,
  PROMPT,
  runCommand,
  shot,
  terminalOf,
  token,
  typeCommand,
  waitForLab
} from './helpers';

test.describe.configure({ mode: 'serial' });

const NAME = 'preview-demo';
const SERVED = 8000; // python3 -m http.server on 0.0.0.0: reachable
const LOOPBACK = 8001; // bound to 127.0.0.1 only: listed, not reachable
const HOSTILE = 8002; // serves the hostile page
const LATE = 8003; // started after its preview panel opened
const DEV_SERVER = 8004; // tests/preview_app/app.js: a module script and a WebSocket

let page: Page;
let workspaceId = '';

/**
 * Keep a screenshot for the README in test-artifacts/ui/ (copied to docs/images/ by hand when
 * the UI changes, like the hub's: a test run never changes tracked files).
 */
async function docShot(name: string): Promise<void> {
  await shot(page, name);
}

const portRow = (sidebar: Locator, port: number): Locator =>
  sidebar.locator(
    `.jp-CodeWorkspaces-item[data-workspace-id="${workspaceId}"] .jp-CodeWorkspaces-port[data-port="${port}"]`
  );

const previewPanel = (port: number): Locator =>
  page.locator(
    `.jp-CodeWorkspacePreview[data-workspace-id="${workspaceId}"][data-port="${port}"]`
  );

const frameOf = (port: number) =>
  previewPanel(port).frameLocator('iframe').first();

/**
 * Run a (long) command in the workspace's shell by pasting it, as a person
 * would paste a snippet.
 */
async function pasteCommand(command: string): Promise<void> {
  const terminal = terminalOf(page, workspaceId);
  await page.evaluate(text => navigator.clipboard.writeText(text), command);
  await terminal.locator('textarea.xterm-helper-textarea').focus();
  await page.keyboard.press('Control+v');
  await page.keyboard.press('Enter');
}

/**
 * A page that tries to use the Jupyter session of whoever opens it and writes
 * what it managed into its DOM (#results, JSON). "control" reads a file of
 * its own origin path, which must work: else the page proves nothing.
 */
function hostilePage(base: string): string {
  const script = `
const BASE = ${JSON.stringify(base)};
const out = {};
async function attempt(name, fn) {
  try {
    out[name] = 'READ ' + String(await fn()).slice(0, 120);
  } catch (e) {
    out[name] = 'FAILED ' + (e && e.name) + ': ' + (e && e.message);
  }
}
async function read(url, init) {
  const r = await fetch(url, init);
  if (!r.ok) throw new Error('HTTP ' + r.status);
  return await r.text();
}
function xsrf() {
  try {
    return (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || '';
  } catch (e) {
    return '';
  }
}
(async () => {
  await attempt('contents', () => read(BASE + 'api/contents', { credentials: 'include' }));
  await attempt('workspaces', () => read(BASE + 'api/code/workspaces', { credentials: 'include' }));
  await attempt('kernels', () => read(BASE + 'api/kernels', {
    method: 'POST',
    credentials: 'include',
    headers: { 'X-XSRFToken': xsrf(), 'Content-Type': 'application/json' },
    body: '{"name": "python3"}'
  }));
  await attempt('cookie', () => {
    const c = document.cookie;
    if (!c) throw new Error('no cookie readable');
    return c;
  });
  await attempt('control', () => read('control.txt'));
  document.getElementById('results').textContent = JSON.stringify(out, null, 1);
})();`;
  return `<!doctype html>
<meta charset="utf-8"><title>hostile page</title>
<h1>A page that wants your Jupyter session</h1>
<pre id="results">running</pre>
<script>${script}</script>
`;
}

/**
 * Wait for the hostile page's report and check it: every attempt failed and
 * the control worked.
 */
async function expectHostileReport(results: Locator): Promise<void> {
  await expect(results).toContainText('"control"');
  const report = JSON.parse((await results.textContent()) ?? '{}');
  expect(report.control).toBe('READ control-ok\n');
  for (const name of ['contents', 'workspaces', 'kernels', 'cookie']) {
    expect(report[name], `${name}: ${report[name]}`).toMatch(/^FAILED /);
  }
}

async function kernelCount(): Promise<number> {
  const response = await fetch(`${baseUrl()}api/kernels`, {
    headers: { Authorization: `token ${token()}` }
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as unknown[]).length;
}

test.beforeAll(async ({ browser }) => {
  const context = await browser.newContext({
    permissions: ['clipboard-read', 'clipboard-write']
  });
  page = await context.newPage();
  page.on('console', message => {
    if (message.type() === 'error') {
      console.log(`[browser console] ${message.text()}`);
    }
  });
});

test.afterAll(async () => {
  await page.context().close();
  if (workspaceId) {
    await api('DELETE', `/${workspaceId}`);
  }
});

test('ports a workspace listens on show in the sidebar; a click opens the preview in a sandboxed panel', async () => {
  const created = await api('POST', '', { name: NAME, repo: '', branch: '' });
  expect(created.status).toBe(201);
  workspaceId = created.json.id;

  await openLab(page);
  await runCommand(page, 'popebot-code:open-workspace', {
    id: workspaceId,
    name: NAME
  });
  const terminal = terminalOf(page, workspaceId);
  await expectScreen(terminal, PROMPT);
  const sidebar = await openSidebar(page);
  const item = sidebar.locator(
    `.jp-CodeWorkspaces-item[data-workspace-id="${workspaceId}"]`
  );
  await expect(item.locator('.jp-CodeWorkspaces-noPorts')).toHaveText(
    'No port is listening.'
  );

  await typeCommand(
    page,
    terminal,
    `mkdir -p ~/site && echo hello > ~/site/hello-preview.txt && cd ~/site && ` +
      `(python3 -m http.server ${SERVED} --bind 0.0.0.0 >/dev/null 2>&1 &) && ` +
      `(python3 -m http.server ${LOOPBACK} --bind 127.0.0.1 >/dev/null 2>&1 &) && echo started`
  );
  await expectScreen(terminal, /^started *$/m);

  // Detected, not typed in: both listed, only the one on 0.0.0.0 usable.
  const served = portRow(sidebar, SERVED);
  const loopback = portRow(sidebar, LOOPBACK);
  await expect(served).toHaveAttribute('data-reachable', 'true');
  await expect(served).toContainText('0.0.0.0');
  await expect(loopback).toHaveAttribute('data-reachable', 'false');
  await expect(loopback).toContainText('127.0.0.1');
  await expect(loopback.locator('.jp-CodeWorkspaces-portHint')).toContainText(
    'bind to 0.0.0.0'
  );
  const loopbackButton = loopback.locator('.jp-CodeWorkspaces-portOpen');
  await expect(loopbackButton).toHaveAttribute('aria-disabled', 'true');
  await expect(loopbackButton).toHaveAccessibleDescription(
    /listens on 127\.0\.0\.1 only.*0\.0\.0\.0/
  );
  await expect(
    sidebar.getByRole('list', { name: `Ports of ${NAME}` })
  ).toBeVisible();
  // A click on the unreachable one opens nothing (Playwright sees it as
  // disabled, so the click is forced).
  await loopbackButton.click({ force: true });
  await expect(previewPanel(LOOPBACK)).toHaveCount(0);

  // Keyboard: focus the port and press Enter.
  await served.locator('.jp-CodeWorkspaces-portOpen').focus();
  await page.keyboard.press('Enter');
  const panel = previewPanel(SERVED);
  await expect(panel).toBeVisible();
  await expect(
    page.locator(
      '#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel'
    )
  ).toHaveText(`${NAME}:${SERVED}`);
  const iframe = panel.locator('iframe');
  const sandbox = (await iframe.getAttribute('sandbox')) ?? '';
  expect(sandbox).toContain('allow-scripts');
  expect(sandbox).not.toContain('allow-same-origin');
  expect(sandbox).not.toContain('allow-top-navigation');
  await expect(iframe).toHaveAttribute(
    'src',
    new RegExp(`/code/preview/${workspaceId}/[^/]+/${SERVED}/$`)
  );
  await expect(
    frameOf(SERVED).getByRole('link', { name: 'hello-preview.txt' })
  ).toBeVisible();
  await expect(panel.locator('.jp-CodeWorkspacePreview-notice')).toBeHidden();
  await docShot('preview-panel');

  // A link followed inside the frame: a cookieless navigation the key authorizes.
  await frameOf(SERVED)
    .getByRole('link', { name: 'hello-preview.txt' })
    .click();
  await expect(frameOf(SERVED).locator('body')).toHaveText('hello');
});

test('a preview opened before its server starts reloads by itself once the port listens', async () => {
  await runCommand(page, 'popebot-code:open-preview', {
    workspaceId,
    port: LATE
  });
  const panel = previewPanel(LATE);
  const notice = panel.locator('.jp-CodeWorkspacePreview-notice');
  await expect(notice).toContainText(
    `Nothing in ${NAME} listens on port ${LATE} yet`
  );
  // The sidebar is not even needed for it.
  await page
    .locator('.jp-SideBar .lm-TabBar-tab[data-id="jp-CodeWorkspaces-sidebar"]')
    .click();
  await expect(page.locator('#jp-CodeWorkspaces-sidebar')).toBeHidden();

  await runCommand(page, 'popebot-code:open-workspace', { id: workspaceId });
  const terminal = terminalOf(page, workspaceId);
  await typeCommand(
    page,
    terminal,
    `(python3 -m http.server ${LATE} --bind 0.0.0.0 >/dev/null 2>&1 &) && echo late-started`
  );
  await expectScreen(terminal, /^late-started *$/m);
  await runCommand(page, 'popebot-code:open-preview', {
    workspaceId,
    port: LATE
  });
  await expect(notice).toBeHidden({ timeout: 30_000 });
  await expect(
    frameOf(LATE).getByRole('link', { name: 'hello-preview.txt' })
  ).toBeVisible();
  await page
    .locator('#jp-main-dock-panel .lm-TabBar-tab', {
      hasText: `${NAME}:${LATE}`
    })
    .locator('.lm-TabBar-tabCloseIcon')
    .click();
  await expect(panel).toHaveCount(0);
});

test('the palette command asks for a workspace and a valid port', async () => {
  await runCommandNoWait('popebot-code:open-preview', { isPalette: true });
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toContainText('Preview Which Workspace?');
  await dialog.locator('select').selectOption({ index: 0 });
  await dialog.locator('.jp-Dialog-footer .jp-mod-accept').click();

  await expect(dialog).toContainText(`Preview a port of ${NAME}`);
  const input = dialog.locator('input');
  // It proposes a port the workspace serves.
  await expect(input).toHaveValue(String(SERVED));
  await input.fill('80a');
  await dialog.locator('.jp-Dialog-footer .jp-mod-accept').click();
  await expect(dialog).toContainText('A port is a whole number, such as 8000.');
  await input.fill('70000');
  await dialog.locator('.jp-Dialog-footer .jp-mod-accept').click();
  await expect(dialog).toContainText('A port is between 1 and 65535.');
  await input.fill(String(SERVED));
  await dialog.locator('.jp-Dialog-footer .jp-mod-accept').click();
  await expect(dialog).toHaveCount(0);
  // The panel already open comes forward (no second one).
  await expect(previewPanel(SERVED)).toHaveCount(1);
  await expect(previewPanel(SERVED)).toBeVisible();
});

/**
 * Start a command that opens dialogs without waiting for it to finish.
 */
async function runCommandNoWait(
  id: string,
  args: Record<string, unknown>
): Promise<void> {
  await page.evaluate(
    ([command, commandArgs]) => {
      void (window as any).jupyterapp.commands.execute(command, commandArgs);
    },
    [id, args] as const
  );
}

test("a hostile page served from the workspace cannot use the person's Jupyter session", async () => {
  const base = new URL(baseUrl()).pathname;
  const html = Buffer.from(hostilePage(base)).toString('base64');
  await runCommand(page, 'popebot-code:open-workspace', { id: workspaceId });
  const terminal = terminalOf(page, workspaceId);
  await pasteCommand(
    `mkdir -p ~/hostile && printf %s ${html} | base64 -d > ~/hostile/index.html && ` +
      `echo control-ok > ~/hostile/control.txt && ` +
      `(python3 -m http.server ${HOSTILE} --bind 0.0.0.0 --directory ~/hostile >/dev/null 2>&1 &) && echo hostile-ready`
  );
  await expectScreen(terminal, /^hostile-ready *$/m);
  const kernelsBefore = await kernelCount();

  // In the panel.
  const sidebar = await openSidebar(page);
  const row = portRow(sidebar, HOSTILE);
  await expect(row).toHaveAttribute('data-reachable', 'true');
  await row.locator('.jp-CodeWorkspaces-portOpen').click();
  await expectHostileReport(frameOf(HOSTILE).locator('#results'));
  await docShot('preview-hostile');

  // At the top of a browser tab, where nothing sandboxes it but the server's
  // Content-Security-Policy.
  const url = await previewPanel(HOSTILE).locator('iframe').getAttribute('src');
  const tab = await page.context().newPage();
  try {
    const response = await tab.goto(new URL(url!, baseUrl()).href);
    expect(response?.headers()['content-security-policy']).toMatch(/^sandbox /);
    await expectHostileReport(tab.locator('#results'));
  } finally {
    await tab.close();
  }
  // The POST did not start a kernel.
  expect(await kernelCount()).toBe(kernelsBefore);
});

test('a dev server page loads its module script and its hot-reload WebSocket works through the preview', async () => {
  // The Python tests' dev server stand-in (HTTP and a WebSocket echo, no npm).
  const app = fs.readFileSync(
    path.resolve(__dirname, '..', '..', '..', 'tests', 'preview_app', 'app.js')
  );
  const packed = zlib.gzipSync(app).toString('base64');
  await runCommand(page, 'popebot-code:open-workspace', { id: workspaceId });
  const terminal = terminalOf(page, workspaceId);
  await pasteCommand(
    `printf %s ${packed} | base64 -d | gunzip > ~/dev-app.js && ` +
      `(node ~/dev-app.js ${DEV_SERVER} >/dev/null 2>&1 &) && echo dev-ready`
  );
  await expectScreen(terminal, /^dev-ready *$/m);
  await runCommand(page, 'popebot-code:open-preview', {
    workspaceId,
    port: DEV_SERVER
  });
  const frame = frameOf(DEV_SERVER);
  await expect(frame.locator('h1')).toHaveText('preview works');
  // The module script came from the opaque origin (Origin: null), and its
  // WebSocket took the server's push and got its answer echoed.
  await expect(frame.locator('#hmr')).toHaveText('echoed over echo-v1');
});

test('"Open in a browser tab" opens the preview without an opener; it works after a reload, and so does JupyterLab', async () => {
  const sidebar = await openSidebar(page);
  const row = portRow(sidebar, SERVED);
  await row.hover();
  const [tab] = await Promise.all([
    page.context().waitForEvent('page'),
    row.locator('.jp-CodeWorkspaces-portTab').click()
  ]);
  try {
    await tab.waitForLoadState();
    expect(tab.url()).toMatch(
      new RegExp(`/code/preview/${workspaceId}/[^/]+/${SERVED}/$`)
    );
    await expect(
      tab.getByRole('link', { name: 'hello-preview.txt' })
    ).toBeVisible();
    expect(await tab.evaluate(() => window.opener)).toBeNull();
    await tab.reload();
    await expect(
      tab.getByRole('link', { name: 'hello-preview.txt' })
    ).toBeVisible();
  } finally {
    await tab.close();
  }

  // Copy Link puts the absolute URL on the clipboard.
  await row.hover();
  await row.locator('.jp-CodeWorkspaces-portCopy').click();
  await expect
    .poll(() => page.evaluate(() => navigator.clipboard.readText()))
    .toMatch(
      new RegExp(
        `^http://127\\.0\\.0\\.1:\\d+/.*code/preview/${workspaceId}/[^/]+/${SERVED}/$`
      )
    );

  // JupyterLab reloaded: the preview panels come back and load again.
  await page.reload();
  await waitForLab(page);
  await expect(previewPanel(SERVED)).toHaveCount(1);
  await page
    .locator('#jp-main-dock-panel .lm-TabBar-tab', {
      hasText: `${NAME}:${SERVED}`
    })
    .click();
  await expect(
    frameOf(SERVED).getByRole('link', { name: 'hello-preview.txt' })
  ).toBeVisible();
  await openSidebar(page);
  await expect(portRow(page.locator('body'), SERVED)).toBeVisible();
  await shot(page, 'preview-restored');
});
