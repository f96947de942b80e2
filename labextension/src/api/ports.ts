// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Ports and preview URLs: what a preview may be opened on, and the URL it
 * is opened at.
 */

import { limits } from './types';

/**
 * What `url_template` has where the port goes.
 */
export const PORT_PLACEHOLDER = '{port}';

/**
 * Whether a value is a TCP port a preview can be opened on.
 */
export function isPort(value: unknown): value is number {
  return (
    typeof value === 'number' &&
    Number.isInteger(value) &&
    value >= limits.portMinimum &&
    value <= limits.portMaximum
  );
}

/**
 * The preview URL of a port from a listing's `url_template`.
 *
 * @throws Error when the port is out of range or the template has no
 * placeholder (it would open the same page for every port).
 */
export function previewUrlFromTemplate(template: string, port: number): string {
  if (!isPort(port)) {
    throw new Error(`Not a TCP port: ${port}`);
  }
  if (!template.includes(PORT_PLACEHOLDER)) {
    throw new Error(`The preview URL template has no ${PORT_PLACEHOLDER}`);
  }
  return template.split(PORT_PLACEHOLDER).join(String(port));
}

/**
 * Make a preview URL the server gave (an absolute path on the server, or a
 * full URL in host mode) absolute, for a browser tab or the clipboard.
 *
 * @throws Error when it is not an http(s) URL (e.g. `javascript:`), which
 * must never reach an iframe or `window.open`.
 */
export function absolutePreviewUrl(url: string, base: string): string {
  const resolved = new URL(url, base);
  if (resolved.protocol !== 'http:' && resolved.protocol !== 'https:') {
    throw new Error(`Not a web address: ${url}`);
  }
  return resolved.href;
}
