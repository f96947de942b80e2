// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Client of the server extension's REST API (`api/code/workspaces`).
 */

import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { responseError } from './errors';
import type { operations } from './generated/openapi';
import type { ClientMode } from './service';
import { SERVICE_URL_OPTION, serviceRequest, serviceSettings } from './service';
import type {
  EnsureResult,
  PortList,
  Profile,
  StopResult,
  Workspace,
  WorkspaceSpec
} from './types';

const API_PATH = 'api/code/workspaces';
const PROFILES_PATH = 'api/code/profiles';
const WS_PATH = 'api/ws/code';

/**
 * The client the page config asks for: the service named by
 * `codeWorkspacesServiceUrl` with the page's token, or else the page's server.
 */
export function clientFromPageConfig(
  pageSettings: ServerConnection.ISettings,
  origin: string = window.location.origin
): WorkspacesClient {
  const serviceUrl = PageConfig.getOption(SERVICE_URL_OPTION);
  if (!serviceUrl) {
    return new WorkspacesClient(pageSettings);
  }
  return new WorkspacesClient(
    serviceSettings(serviceUrl, origin, PageConfig.getToken(), {
      fetch: pageSettings.fetch,
      Request: pageSettings.Request,
      Headers: pageSettings.Headers,
      WebSocket: pageSettings.WebSocket
    }),
    'service'
  );
}

/**
 * Make a request to the workspaces API and parse its JSON answer.
 *
 * @throws WorkspaceRequestError on a non-2xx answer,
 * ServerConnection.NetworkError when the server cannot be reached.
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit,
  settings: ServerConnection.ISettings,
  mode: ClientMode = 'server',
  apiPath: string = API_PATH
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, apiPath, endPoint);
  const response =
    mode === 'service'
      ? await serviceRequest(url, init, settings)
      : await ServerConnection.makeRequest(url, init, settings);
  if (!response.ok) {
    throw await responseError(response);
  }
  if (response.status === 204) {
    return undefined as T;
  }
  return (await response.json()) as T;
}

/**
 * Typed calls of the workspaces API.
 */
export class WorkspacesClient {
  constructor(
    readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings(),
    readonly mode: ClientMode = 'server'
  ) {}

  async list(): Promise<Workspace[]> {
    const body = await requestAPI<
      operations['listWorkspaces']['responses'][200]['content']['application/json']
    >('', { method: 'GET' }, this.serverSettings, this.mode);
    return body.workspaces;
  }

  /**
   * The workspace profiles the caller may use; empty when the server offers
   * none.
   */
  async profiles(): Promise<Profile[]> {
    const body = await requestAPI<
      operations['listProfiles']['responses'][200]['content']['application/json']
    >('', { method: 'GET' }, this.serverSettings, this.mode, PROFILES_PATH);
    return body.profiles;
  }

  create(spec: WorkspaceSpec): Promise<Workspace> {
    return requestAPI<Workspace>(
      '',
      { method: 'POST', body: JSON.stringify(spec) },
      this.serverSettings,
      this.mode
    );
  }

  get(id: string): Promise<Workspace> {
    return requestAPI<Workspace>(
      encodeURIComponent(id),
      { method: 'GET' },
      this.serverSettings,
      this.mode
    );
  }

  rename(id: string, name: string): Promise<Workspace> {
    return requestAPI<Workspace>(
      encodeURIComponent(id),
      { method: 'PATCH', body: JSON.stringify({ name }) },
      this.serverSettings,
      this.mode
    );
  }

  toggleStar(id: string): Promise<Workspace> {
    return requestAPI<Workspace>(
      `${encodeURIComponent(id)}/star`,
      { method: 'POST' },
      this.serverSettings,
      this.mode
    );
  }

  async remove(id: string): Promise<void> {
    await requestAPI<void>(
      encodeURIComponent(id),
      { method: 'DELETE' },
      this.serverSettings,
      this.mode
    );
  }

  ensure(id: string): Promise<EnsureResult> {
    return requestAPI<EnsureResult>(
      `${encodeURIComponent(id)}/ensure`,
      { method: 'POST' },
      this.serverSettings,
      this.mode
    );
  }

  /**
   * Stop the workspace's container; its files stay and the next ensure
   * starts it again.
   */
  stop(id: string): Promise<StopResult> {
    return requestAPI<StopResult>(
      `${encodeURIComponent(id)}/stop`,
      { method: 'POST' },
      this.serverSettings,
      this.mode
    );
  }

  /**
   * The TCP ports the workspace listens on; never starts it.
   */
  ports(id: string): Promise<PortList> {
    return requestAPI<PortList>(
      `${encodeURIComponent(id)}/ports`,
      { method: 'GET' },
      this.serverSettings,
      this.mode
    );
  }

  /**
   * URL of the terminal relay of a workspace.
   *
   * Like JupyterLab's kernel and terminal sockets, it carries the token only
   * when the settings say so: a browser on the server's own host is
   * authenticated by its cookie, and a WebSocket cannot send headers. A
   * service (client mode) always gets the token this way.
   */
  terminalUrl(id: string): string {
    const settings = this.serverSettings;
    let url = URLExt.join(settings.wsUrl, WS_PATH, encodeURIComponent(id));
    if (settings.appendToken && settings.token) {
      url += `?token=${encodeURIComponent(settings.token)}`;
    }
    return url;
  }
}
