// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * xterm.js colors, taken from JupyterLab's theme (`--jp-*` CSS variables) the
 * way JupyterLab's own terminal takes them.
 */

import type { ITheme } from '@xterm/xterm';

/**
 * The terminal theme setting.
 */
export type TerminalTheme = 'inherit' | 'light' | 'dark';

/**
 * Colors of the light terminal theme (JupyterLab's).
 */
export const lightTheme: ITheme = {
  foreground: '#000',
  background: '#fff',
  cursor: '#616161',
  cursorAccent: '#F5F5F5',
  selectionBackground: 'rgba(97, 97, 97, 0.3)',
  selectionInactiveBackground: 'rgba(189, 189, 189, 0.3)'
};

/**
 * Colors of the dark terminal theme (JupyterLab's).
 */
export const darkTheme: ITheme = {
  foreground: '#fff',
  background: '#000',
  cursor: '#fff',
  cursorAccent: '#000',
  selectionBackground: 'rgba(255, 255, 255, 0.3)',
  selectionInactiveBackground: 'rgba(238, 238, 238, 0.3)'
};

/**
 * Colors of the current JupyterLab theme. Read each time: a theme change
 * replaces the CSS variables.
 */
export function inheritTheme(element: Element = document.body): ITheme {
  const style = getComputedStyle(element);
  const value = (name: string) => style.getPropertyValue(name).trim();
  return {
    foreground: value('--jp-ui-font-color0'),
    background: value('--jp-layout-color0'),
    cursor: value('--jp-ui-font-color1'),
    cursorAccent: value('--jp-ui-inverse-font-color0'),
    selectionBackground: value('--jp-layout-color3'),
    selectionInactiveBackground: value('--jp-layout-color2')
  };
}

/**
 * The xterm.js theme for a setting value.
 */
export function xtermTheme(theme: TerminalTheme): ITheme {
  switch (theme) {
    case 'light':
      return { ...lightTheme };
    case 'dark':
      return { ...darkTheme };
    case 'inherit':
    default:
      return inheritTheme();
  }
}

/**
 * The monospace font of the current JupyterLab theme.
 */
export function codeFontFamily(element: Element = document.body): string {
  const family = getComputedStyle(element)
    .getPropertyValue('--jp-code-font-family')
    .trim();
  return family || 'monospace';
}
