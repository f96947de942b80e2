// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * xterm.js for a workspace terminal: loaded on first use, configured from
 * the user's settings, and its keys shared with the browser.
 */

import { Platform } from '@lumino/domutils';
import type { FitAddon } from '@xterm/addon-fit';
import type {
  ITerminalOptions as IXtermOptions,
  Terminal as Xterm
} from '@xterm/xterm';
import type { TerminalTheme } from './theme';
import { codeFontFamily, xtermTheme } from './theme';

/**
 * The terminal settings users can change (schema/plugin.json).
 */
export interface ITerminalOptions {
  fontSize: number;
  scrollback: number;
  theme: TerminalTheme;
  pasteWithCtrlV: boolean;
}

/**
 * Defaults, kept equal to schema/plugin.json.
 */
export const DEFAULT_OPTIONS: ITerminalOptions = {
  fontSize: 13,
  scrollback: 10000,
  theme: 'inherit',
  pasteWithCtrlV: true
};

/**
 * xterm.js's options for the user's settings, with the code font of
 * `element`'s theme.
 */
export function xtermOptions(options: ITerminalOptions, element: Element) {
  const { fontSize, scrollback, theme } = options;
  return {
    fontSize,
    scrollback,
    theme: xtermTheme(theme),
    fontFamily: codeFontFamily(element),
    cursorBlink: true
  };
}

/**
 * Leave the copy and paste keys to the browser where it should have them.
 */
export function attachKeyHandler(
  term: Xterm,
  pasteWithCtrlV: () => boolean
): void {
  term.attachCustomKeyEventHandler(event => {
    // As in JupyterLab's terminal: Cmd+C/V work natively on macOS.
    if (Platform.IS_MAC) {
      return true;
    }
    if (event.ctrlKey && event.key === 'c' && term.hasSelection()) {
      // Let the browser copy the selection instead of sending an interrupt.
      return false;
    }
    if (event.ctrlKey && event.key === 'v' && pasteWithCtrlV()) {
      // Let the browser paste (xterm.js handles the paste event).
      return false;
    }
    return true;
  });
}

let modules: Promise<
  [
    typeof import('@xterm/xterm'),
    typeof import('@xterm/addon-fit'),
    typeof import('@xterm/addon-web-links')
  ]
> | null = null;

/**
 * Create an xterm.js terminal, loading xterm.js on first use so JupyterLab
 * starts without it.
 */
export async function createTerminal(
  options: IXtermOptions
): Promise<[Xterm, FitAddon]> {
  if (!modules) {
    modules = Promise.all([
      import('@xterm/xterm'),
      import('@xterm/addon-fit'),
      import('@xterm/addon-web-links')
    ]);
    // A failed load (e.g. the server restarted mid-upgrade) may work later.
    modules.catch(() => {
      modules = null;
    });
  }
  const [xterm, fit, links] = await modules;
  const term = new xterm.Terminal(options);
  const fitAddon = new fit.FitAddon();
  term.loadAddon(fitAddon);
  term.loadAddon(new links.WebLinksAddon());
  return [term, fitAddon];
}
