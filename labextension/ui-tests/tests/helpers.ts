// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { expect, type Locator, type Page } from '@playwright/test';

export const baseUrl = (): string => {
  const url = process.env.POPEBOT_BASE_URL;
  if (!url) {
    throw new Error('POPEBOT_BASE_URL is not set: global-setup did not run');
  }
  return url;
};

export const token = (): string => process.env.POPEBOT_TOKEN ?? '';

/**
 * Which server a helper talks to: the shared one (global-setup.ts) unless a
 * test started its own.
 */
export interface IServerAddress {
  baseUrl: string;
  token: string;
}

const shared = (): IServerAddress => ({ baseUrl: baseUrl(), token: token() });

export const screenshotDir = path.resolve(
  __dirname,
  '..',
  '..',
  '..',
  'test-artifacts',
  'ui'
);

/**
 * Save a screenshot of the page's current state for people to look at.
 */
export async function shot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: path.join(screenshotDir, `${name}.png`) });
}

/**
 * Record every status text the terminal panels show, so that short-lived
 * states ("Starting the container…") can be checked after the fact.
 */
export async function recordStatusTexts(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as any).__popebotStatusTexts = seen;
    const observer = new MutationObserver(mutations => {
      for (const mutation of mutations) {
        const node =
          mutation.target.nodeType === Node.TEXT_NODE
            ? mutation.target.parentElement
            : (mutation.target as Element);
        const status = node?.closest?.('.jp-CodeWorkspaceTerminal-statusText');
        if (status && status.textContent) {
          seen.push(status.textContent);
        }
      }
    });
    const start = () =>
      observer.observe(document.documentElement, {
        subtree: true,
        childList: true,
        characterData: true
      });
    if (document.documentElement) {
      start();
    } else {
      document.addEventListener('DOMContentLoaded', start);
    }
  });
}

export async function statusTexts(page: Page): Promise<string[]> {
  return page.evaluate(() => [...((window as any).__popebotStatusTexts ?? [])]);
}

/**
 * Open JupyterLab (the token in the URL logs the browser in with a cookie).
 */
export async function openLab(
  page: Page,
  server: IServerAddress = shared()
): Promise<void> {
  await page.goto(`${server.baseUrl}lab?token=${server.token}`);
  await waitForLab(page);
}

export async function waitForLab(page: Page): Promise<void> {
  await expect(page.locator('#jupyterlab-splash')).toHaveCount(0, {
    timeout: 120_000
  });
  await expect(page.locator('#jp-main-dock-panel')).toBeVisible();
}

/**
 * Run a JupyterLab command in the page. Its result (often a widget, which
 * cannot cross into the test) stays in the page.
 */
export async function runCommand(
  page: Page,
  id: string,
  args: Record<string, unknown> = {}
): Promise<void> {
  await page.evaluate(
    async ([command, commandArgs]) => {
      await (window as any).jupyterapp.commands.execute(command, commandArgs);
    },
    [id, args] as const
  );
}

/**
 * Call the REST API from the test (Node side) with the token.
 */
export async function api(
  method: string,
  endpoint: string,
  body?: unknown,
  server: IServerAddress = shared()
): Promise<{ status: number; json: any }> {
  const url = `${server.baseUrl}api/code/workspaces${endpoint}`;
  const response = await fetch(url, {
    method,
    headers: {
      Authorization: `token ${server.token}`,
      'Content-Type': 'application/json'
    },
    body: body === undefined ? undefined : JSON.stringify(body)
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : null };
}

/**
 * Run the docker CLI against the real engine.
 */
export function docker(...args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8' }).trim();
}

/**
 * Whether a container or volume exists.
 */
export function dockerObjectExists(
  kind: 'container' | 'volume',
  name: string
): boolean {
  try {
    execFileSync('docker', [kind, 'inspect', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * The terminal panel of a workspace.
 */
export function terminalOf(page: Page, workspaceId: string): Locator {
  return page.locator(
    `.jp-CodeWorkspaceTerminal[data-workspace-id="${workspaceId}"]`
  );
}

/**
 * The text the terminal shows, one line per row.
 */
export async function screenText(terminal: Locator): Promise<string> {
  const text = await terminal.locator('.xterm-rows').innerText();
  return text.replace(/\u00a0/g, ' ');
}

/**
 * Wait until the terminal's screen matches.
 */
export async function expectScreen(
  terminal: Locator,
  pattern: RegExp,
  timeout = 90_000
): Promise<void> {
  await expect
    .poll(() => screenText(terminal), {
      timeout,
      message: `screen ~ ${pattern}`
    })
    .toMatch(pattern);
}

/**
 * Type a command into the terminal and press Enter.
 */
export async function typeCommand(
  page: Page,
  terminal: Locator,
  command: string
): Promise<void> {
  await terminal.locator('textarea.xterm-helper-textarea').focus();
  await page.keyboard.type(command);
  await page.keyboard.press('Enter');
}

/**
 * Type a command and press Enter wherever the keyboard is now, as a person
 * would right after opening a terminal: no click into it first.
 */
export async function typeWithoutClicking(
  page: Page,
  command: string
): Promise<void> {
  await page.keyboard.type(command);
  await page.keyboard.press('Enter');
}

/**
 * The shell's prompt ends the last non-empty line of the screen.
 */
export const PROMPT = /\$ *$/m;

/**
 * Open the left sidebar of code workspaces.
 */
export async function openSidebar(page: Page): Promise<Locator> {
  const sidebar = page.locator('#jp-CodeWorkspaces-sidebar');
  if (!(await sidebar.isVisible())) {
    await page
      .locator(
        '.jp-SideBar .lm-TabBar-tab[data-id="jp-CodeWorkspaces-sidebar"]'
      )
      .click();
  }
  await expect(sidebar).toBeVisible();
  return sidebar;
}

/**
 * Parse a CSS color the way the browser computes it.
 */
export async function computedColor(
  page: Page,
  cssColor: string
): Promise<string> {
  return page.evaluate(color => {
    const probe = document.createElement('div');
    probe.style.color = color;
    document.body.appendChild(probe);
    const value = getComputedStyle(probe).color;
    probe.remove();
    return value;
  }, cssColor);
}
