// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Calling a separate code-workspaces service (JupyterHub mode): its settings
 * from the page config, and requests that carry its token and no cookies.
 */

import { ServerConnection } from '@jupyterlab/services';

/**
 * Where the workspaces API is and how to authenticate to it.
 *
 * - `server`: the page's own Jupyter server (single-user mode), called as
 *   JupyterLab calls it: token header and/or cookie with the XSRF header.
 * - `service`: a separate service (JupyterHub mode, `codeWorkspacesServiceUrl`
 *   in the page config), called with the page's token only: no cookies, so no
 *   XSRF cookie or header either.
 */
export type ClientMode = 'server' | 'service';

/**
 * The page-config key that switches the client to a service.
 */
export const SERVICE_URL_OPTION = 'codeWorkspacesServiceUrl';

/**
 * Settings that send every call to the service at `serviceUrl`, an absolute
 * path on the page's origin such as `/services/code-workspaces/`.
 *
 * @throws Error when `serviceUrl` is not an absolute path.
 */
export function serviceSettings(
  serviceUrl: string,
  origin: string,
  token: string,
  overrides: Partial<ServerConnection.ISettings> = {}
): ServerConnection.ISettings {
  const path = serviceUrl.trim();
  // "//host/..." would leave the page's origin: only paths on it are allowed.
  if (!path.startsWith('/') || path.startsWith('//')) {
    throw new Error(
      `${SERVICE_URL_OPTION} must be an absolute path such as /services/code-workspaces/, not "${serviceUrl}"`
    );
  }
  const baseUrl = new URL(path.endsWith('/') ? path : `${path}/`, origin).href;
  return ServerConnection.makeSettings({
    baseUrl,
    wsUrl: `ws${baseUrl.slice(4)}`, // http -> ws, https -> wss
    token,
    // A WebSocket cannot carry headers: the token goes in its URL.
    appendToken: true,
    init: { cache: 'no-store', credentials: 'omit' },
    ...overrides
  });
}

/**
 * Send a request to a service with its token and nothing else: no cookies, so
 * neither the page server's XSRF cookie nor its header go along.
 */
export async function serviceRequest(
  url: string,
  init: RequestInit,
  settings: ServerConnection.ISettings
): Promise<Response> {
  // As JupyterLab does: an explicit cache buster, since no-store is not enough everywhere.
  const busted = `${url}${url.includes('?') ? '&' : '?'}${Date.now()}`;
  const request = new settings.Request(busted, {
    ...settings.init,
    ...init,
    credentials: 'omit'
  });
  request.headers.set('Authorization', `token ${settings.token}`);
  if (!request.headers.has('Content-Type')) {
    request.headers.set('Content-Type', 'application/json');
  }
  try {
    return await settings.fetch.call(null, request);
  } catch (reason) {
    throw new ServerConnection.NetworkError(reason as TypeError);
  }
}
