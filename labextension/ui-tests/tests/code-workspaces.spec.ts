// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * A person's path through the extension, in a real browser, against a real
 * Jupyter server, Docker engine and workspace image. The tests run in order
 * and share the workspace the first one creates.
 */

import { expect, type Page, test } from '@playwright/test';
import {
  api,
  computedColor,
  docker,
  dockerObjectExists,
  expectScreen,
  openLab,
  openSidebar,
  PROMPT,
  recordStatusTexts,
  runCommand,
  shot,
  statusTexts,
  terminalOf,
  typeCommand,
  typeWithoutClicking,
  waitForLab
} from './helpers';

test.describe.configure({ mode: 'serial' });

let page: Page;
let workspaceId = '';
const NAME = 'ui-test workspace';

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
  await recordStatusTexts(page);
});

test.afterAll(async () => {
  await page.context().close();
});

test('the launcher tile creates a workspace whose terminal takes the keyboard at once', async () => {
  await openLab(page);
  const tile = page.locator('.jp-LauncherCard', { hasText: 'Code Workspace' });
  await expect(tile).toBeVisible();
  await expect(tile.locator('svg')).toBeVisible();
  await shot(page, '01-launcher');

  await tile.click();
  const dialog = page.locator('.jp-CodeWorkspaces-createDialog');
  await expect(dialog).toBeVisible();
  await dialog.locator('input[name="name"]').fill(NAME);
  await shot(page, '02-create-dialog');
  await dialog.locator('.jp-Dialog-footer .jp-mod-accept').click();
  await expect(dialog).toHaveCount(0);

  const terminal = page.locator('.jp-CodeWorkspaceTerminal').first();
  await expect(terminal).toBeVisible();
  workspaceId = (await terminal.getAttribute('data-workspace-id')) ?? '';
  expect(workspaceId).not.toBe('');
  await expect(
    page.locator(
      '#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel'
    )
  ).toHaveText(NAME);

  await expectScreen(terminal, PROMPT);
  // A new user types at once, without clicking into the terminal first.
  await typeWithoutClicking(page, 'echo $((6*7))');
  // Only the output has 42 on a line of its own; the command line has 6*7.
  await expectScreen(terminal, /^42 *$/m, 30_000);
  await expect(
    terminal.locator('textarea.xterm-helper-textarea')
  ).toBeFocused();
  await expect(
    terminal.locator('.jp-CodeWorkspaceTerminal-status')
  ).toBeHidden();
  await shot(page, '03-terminal-42');

  const { status, json } = await api('GET', `/${workspaceId}`);
  expect(status).toBe(200);
  expect(json.name).toBe(NAME);
  expect(json.container.status).toBe('running');
});

test("copy and paste work as in JupyterLab's terminal", async () => {
  const terminal = terminalOf(page, workspaceId);
  const clipboard = () => page.evaluate(() => navigator.clipboard.readText());

  // A drag selects (the shell has not asked for the mouse); Ctrl+C then
  // copies instead of sending an interrupt.
  const row = terminal.locator('.xterm-rows > div', { hasText: /^42\s*$/ });
  const box = (await row.boundingBox())!;
  await page.mouse.move(box.x + 1, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + 40, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await expect(terminal.locator('.xterm-selection div').first()).toBeAttached();
  await page.keyboard.press('Control+c');
  await expect.poll(clipboard).toMatch(/^42\s*$/);

  // Ctrl+V pastes the clipboard into the shell.
  await page.evaluate(() =>
    navigator.clipboard.writeText('echo ctrlv-$((4*4))')
  );
  await terminal.locator('textarea.xterm-helper-textarea').focus();
  await page.keyboard.press('Control+v');
  await page.keyboard.press('Enter');
  await expectScreen(terminal, /^ctrlv-16 *$/m);

  // So does the Paste command (the terminal's context menu).
  await page.evaluate(() =>
    navigator.clipboard.writeText('echo menu-$((5*5))')
  );
  await runCommand(page, 'popebot-code:paste');
  await page.keyboard.press('Enter');
  await expectScreen(terminal, /^menu-25 *$/m);
});

test('a page reload restores the panel and its earlier output (the session replays it)', async () => {
  await page.reload();
  await waitForLab(page);
  const terminal = terminalOf(page, workspaceId);
  await expect(terminal).toBeVisible();
  await expect(
    page.locator('#jp-main-dock-panel .lm-TabBar-tab', { hasText: NAME })
  ).toBeVisible();
  await expectScreen(terminal, /^42 *$/m);
  await expectScreen(terminal, /echo \$\(\(6\*7\)\)/);
  await shot(page, '04-after-reload');
});

test('a terminal panel activated again takes the keyboard', async () => {
  const terminal = terminalOf(page, workspaceId);
  const keyboard = terminal.locator('textarea.xterm-helper-textarea');
  const tabs = page.locator('#jp-main-dock-panel .lm-TabBar-tab');
  const launcherTab = tabs.filter({ hasText: 'Launcher' });
  const terminalTab = tabs.filter({ hasText: NAME });

  // Another main-area tab takes the keyboard away.
  await runCommand(page, 'launcher:create');
  await expect(launcherTab).toHaveClass(/lm-mod-current/);
  await expect(keyboard).not.toBeFocused();

  // Back through the sidebar: the open panel comes forward with the keyboard.
  const sidebar = await openSidebar(page);
  await sidebar
    .locator(
      `.jp-CodeWorkspaces-item[data-workspace-id="${workspaceId}"] .jp-CodeWorkspaces-name`
    )
    .click();
  await expect(terminalTab).toHaveClass(/lm-mod-current/);
  await typeWithoutClicking(page, 'echo sidebar-$((3*3))');
  await expectScreen(terminal, /^sidebar-9 *$/m, 30_000);

  // Back through its tab.
  await launcherTab.click();
  await expect(keyboard).not.toBeFocused();
  await terminalTab.click();
  await typeWithoutClicking(page, 'echo tab-$((2*4))');
  await expectScreen(terminal, /^tab-8 *$/m, 30_000);
  await shot(page, '04b-reactivated');

  await launcherTab.locator('.lm-TabBar-tabCloseIcon').click();
  await expect(launcherTab).toHaveCount(0);
});

test('the sidebar lists, stars and renames workspaces in place', async () => {
  const sidebar = await openSidebar(page);
  const items = sidebar.locator('.jp-CodeWorkspaces-item');
  await expect(items).toHaveCount(1);

  // A workspace made elsewhere shows up by itself while the sidebar is open.
  const second = await api('POST', '', {
    name: 'ui-test second',
    repo: '',
    branch: ''
  });
  expect(second.status).toBe(201);
  await expect(items).toHaveCount(2);
  // Most recently updated first while nothing is starred.
  await expect(items.nth(0)).toHaveAttribute(
    'data-workspace-id',
    second.json.id
  );
  const mine = sidebar.locator(
    `.jp-CodeWorkspaces-item[data-workspace-id="${workspaceId}"]`
  );
  await expect(mine).toHaveAttribute('data-status', 'running');
  await expect(mine.locator('.jp-CodeWorkspaces-status')).toHaveClass(
    /jp-mod-running/
  );

  // Star: it moves to the top and the server knows.
  await mine.locator('.jp-CodeWorkspaces-star').click();
  await expect(mine.locator('.jp-CodeWorkspaces-star')).toHaveAttribute(
    'aria-pressed',
    'true'
  );
  await expect(items.nth(0)).toHaveAttribute('data-workspace-id', workspaceId);
  expect((await api('GET', `/${workspaceId}`)).json.starred).toBe(true);
  await shot(page, '05-sidebar-starred');

  // Rename to nothing: the server refuses and says why, in place.
  await mine.locator('.jp-CodeWorkspaces-renameButton').click();
  const input = mine.locator('.jp-CodeWorkspaces-renameInput');
  await expect(input).toBeFocused();
  await input.fill('   ');
  await input.press('Enter');
  await expect(mine.locator('.jp-CodeWorkspaces-fieldError')).toContainText(
    /name/i
  );
  await shot(page, '06-rename-error');

  // Rename for real: the sidebar, the tab and the server agree.
  await input.fill('renamed workspace');
  await input.press('Enter');
  await expect(mine.locator('.jp-CodeWorkspaces-name')).toHaveText(
    'renamed workspace'
  );
  await expect(
    page.locator('#jp-main-dock-panel .lm-TabBar-tab', {
      hasText: 'renamed workspace'
    })
  ).toBeVisible();
  expect((await api('GET', `/${workspaceId}`)).json.name).toBe(
    'renamed workspace'
  );

  // Unstar: back below the more recently updated one? The rename updated
  // ours last, so it stays first; the star button reflects the state.
  await mine.locator('.jp-CodeWorkspaces-star').click();
  await expect(mine.locator('.jp-CodeWorkspaces-star')).toHaveAttribute(
    'aria-pressed',
    'false'
  );
  expect((await api('GET', `/${workspaceId}`)).json.starred).toBe(false);
  await shot(page, '07-sidebar-renamed');

  // The second workspace is not needed any more.
  expect((await api('DELETE', `/${second.json.id}`)).status).toBe(204);
  await sidebar.locator('.jp-CodeWorkspaces-refresh').click();
  await expect(items).toHaveCount(1);
});

test('the terminal reconnects by itself when its container stops or vanishes', async () => {
  const terminal = terminalOf(page, workspaceId);
  const container = `code-workspace-${workspaceId}`;
  const status = terminal.locator('.jp-CodeWorkspaceTerminal-status');

  docker('stop', '-t', '2', container);
  await expect(status).toContainText(
    /Connection lost|Reconnecting|Starting the container/
  );
  await shot(page, '08-reconnecting');
  await expect(status).toBeHidden({ timeout: 120_000 });
  await expectScreen(terminal, PROMPT);
  await typeCommand(page, terminal, 'echo back-$((1+1))');
  await expectScreen(terminal, /^back-2 *$/m);
  let seen = await statusTexts(page);
  expect(seen.some(text => text.startsWith('Connection lost:'))).toBe(true);
  expect(seen).toContain('Starting the container…');
  await shot(page, '09-reconnected');

  docker('rm', '-f', container);
  await expect(status).toBeVisible();
  await expect(status).toBeHidden({ timeout: 120_000 });
  await expectScreen(terminal, PROMPT);
  await typeCommand(page, terminal, 'echo again-$((2+3))');
  await expectScreen(terminal, /^again-5 *$/m);
  seen = await statusTexts(page);
  expect(seen).toContain('Creating the container…');
});

test('Stop ends the container but keeps the files; the terminal says so and Reconnect starts it', async () => {
  const sidebar = await openSidebar(page);
  const mine = sidebar.locator(
    `.jp-CodeWorkspaces-item[data-workspace-id="${workspaceId}"]`
  );
  const terminal = terminalOf(page, workspaceId);
  const status = terminal.locator('.jp-CodeWorkspaceTerminal-status');
  const reconnect = terminal.locator('.jp-CodeWorkspaceTerminal-retry');
  const container = `code-workspace-${workspaceId}`;
  const state = () => docker('inspect', '-f', '{{.State.Status}}', container);

  // A file in the workspace directory (the volume) must survive the stop.
  await typeCommand(
    page,
    terminal,
    'echo kept-$((3*3)) > /home/coder/workspace/stop-marker && echo written'
  );
  await expectScreen(terminal, /^written *$/m);

  const stop = mine.locator('.jp-CodeWorkspaces-stop');
  await expect(stop).toBeVisible();
  await stop.click();
  await expect(status).toContainText('The workspace is stopped');
  await expect(reconnect).toBeVisible();
  await expect(reconnect).toHaveText('Reconnect');
  expect(state()).toBe('exited');
  await expect(mine).toHaveAttribute('data-status', 'stopped');
  await expect(stop).toHaveCount(0);
  await shot(page, '15-stopped');

  // Nothing starts it again behind the user's back.
  await page.waitForTimeout(4000);
  expect(state()).toBe('exited');
  await expect(status).toContainText('The workspace is stopped');

  // Reconnect starts it; the file is still there.
  await reconnect.click();
  await expect(status).toBeHidden({ timeout: 120_000 });
  await expectScreen(terminal, PROMPT);
  expect(state()).toBe('running');
  await typeCommand(page, terminal, 'cat /home/coder/workspace/stop-marker');
  await expectScreen(terminal, /^kept-9 *$/m);
  await expect(stop).toBeVisible();

  // The terminal's context menu stops it too.
  await terminal.locator('.xterm-screen').click({ button: 'right' });
  await page
    .locator('.lm-Menu-itemLabel', { hasText: /^Stop Code Workspace$/ })
    .click();
  await expect(status).toContainText('The workspace is stopped');
  expect(state()).toBe('exited');
  await reconnect.click();
  await expect(status).toBeHidden({ timeout: 120_000 });
  await expectScreen(terminal, PROMPT);
});

test('the terminal follows the dark theme and back', async () => {
  const terminal = terminalOf(page, workspaceId);
  const viewport = terminal.locator('.xterm-viewport');
  const themeBackground = () =>
    page.evaluate(() =>
      getComputedStyle(document.body)
        .getPropertyValue('--jp-layout-color0')
        .trim()
    );

  const lightBackground = await computedColor(page, await themeBackground());
  await expect(viewport).toHaveCSS('background-color', lightBackground);

  await page
    .locator('.lm-MenuBar-itemLabel', { hasText: /^Settings$/ })
    .click();
  await page.locator('.lm-Menu-itemLabel', { hasText: /^Theme$/ }).hover();
  await page
    .locator('.lm-Menu-itemLabel', { hasText: /^JupyterLab Dark$/ })
    .click();
  await expect(page.locator('body')).toHaveAttribute(
    'data-jp-theme-light',
    'false'
  );

  const darkBackground = await computedColor(page, await themeBackground());
  expect(darkBackground).not.toBe(lightBackground);
  await expect(viewport).toHaveCSS('background-color', darkBackground);
  await expectScreen(terminal, PROMPT);
  await shot(page, '10-dark-theme');

  await page
    .locator('.lm-MenuBar-itemLabel', { hasText: /^Settings$/ })
    .click();
  await page.locator('.lm-Menu-itemLabel', { hasText: /^Theme$/ }).hover();
  await page
    .locator('.lm-Menu-itemLabel', { hasText: /^JupyterLab Light$/ })
    .click();
  await expect(page.locator('body')).toHaveAttribute(
    'data-jp-theme-light',
    'true'
  );
  await expect(viewport).toHaveCSS('background-color', lightBackground);
});

test('terminal settings apply live', async () => {
  const terminal = terminalOf(page, workspaceId);
  const fontSize = () =>
    terminal
      .locator('.xterm-rows')
      .evaluate(node => getComputedStyle(node).fontSize);
  expect(await fontSize()).toBe('13px');
  await runCommand(page, 'settingeditor:open', { query: 'Code Workspaces' });
  const field = page.locator(
    '[id="jp-SettingsEditor-jupyter-popebot-code:plugin_fontSize"]'
  );
  await expect(field).toBeVisible();
  await field.fill('18');
  await field.blur();
  await expect.poll(fontSize).toBe('18px');
  await shot(page, '11-settings-font-size');
  await field.fill('13');
  await field.blur();
  await expect.poll(fontSize).toBe('13px');
  await page
    .locator('#jp-main-dock-panel .lm-TabBar-tab', { hasText: 'Settings' })
    .locator('.lm-TabBar-tabCloseIcon')
    .click();
});

test("the server's validation error shows next to the field; the dialog stays open", async () => {
  const sidebar = await openSidebar(page);
  await sidebar.locator('.jp-CodeWorkspaces-create').click();
  const dialog = page.locator('.jp-CodeWorkspaces-createDialog');
  await expect(dialog).toBeVisible();
  await dialog.locator('input[name="name"]').fill('bad one');
  await dialog.locator('input[name="repo"]').fill('-upload-pack=touch /tmp/x');
  await dialog.locator('.jp-Dialog-footer .jp-mod-accept').click();

  const repoError = dialog.locator(
    '.jp-CodeWorkspaces-fieldError[data-field="repo"]'
  );
  await expect(repoError).toBeVisible();
  await expect(repoError).toContainText(/repo/i);
  await expect(dialog.locator('input[name="repo"]')).toHaveAttribute(
    'aria-invalid',
    'true'
  );
  await expect(dialog).toBeVisible();
  await shot(page, '12-server-validation-error');

  const branch = dialog.locator('input[name="branch"]');
  await dialog.locator('input[name="repo"]').fill('');
  await branch.fill('bad..branch');
  await dialog.locator('.jp-Dialog-footer .jp-mod-accept').click();
  await expect(
    dialog.locator('.jp-CodeWorkspaces-fieldError[data-field="branch"]')
  ).toBeVisible();
  await expect(repoError).toBeHidden();

  await dialog.locator('.jp-Dialog-footer .jp-mod-reject').click();
  await expect(dialog).toHaveCount(0);
  const listed = await api('GET', '');
  expect(
    listed.json.workspaces.map((w: { name: string }) => w.name)
  ).not.toContain('bad one');
});

test('delete asks first, says the files go too, and removes container and volume', async () => {
  const sidebar = await openSidebar(page);
  const mine = sidebar.locator(
    `.jp-CodeWorkspaces-item[data-workspace-id="${workspaceId}"]`
  );
  const container = `code-workspace-${workspaceId}`;
  expect(dockerObjectExists('container', container)).toBe(true);

  await mine.locator('.jp-CodeWorkspaces-delete').click();
  const confirm = page.locator('.jp-Dialog-content', {
    hasText: 'Delete Code Workspace'
  });
  await expect(confirm).toBeVisible();
  await expect(confirm).toContainText('files');
  await shot(page, '13-delete-confirmation');

  // Cancel keeps everything.
  await confirm.locator('.jp-mod-reject').click();
  await expect(mine).toBeVisible();
  expect((await api('GET', `/${workspaceId}`)).status).toBe(200);

  await mine.locator('.jp-CodeWorkspaces-delete').click();
  await page
    .locator('.jp-Dialog-content', { hasText: 'Delete Code Workspace' })
    .locator('.jp-mod-warn')
    .click();
  await expect(mine).toHaveCount(0);
  await expect(terminalOf(page, workspaceId)).toHaveCount(0);
  expect((await api('GET', `/${workspaceId}`)).status).toBe(404);
  expect(dockerObjectExists('container', container)).toBe(false);
  expect(dockerObjectExists('volume', container)).toBe(false);
  await expect(sidebar.locator('.jp-CodeWorkspaces-empty')).toBeVisible();
  await shot(page, '14-after-delete');
});
