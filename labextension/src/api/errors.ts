// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Errors of the workspaces API: a non-2xx answer with the server's message
 * and the field it is about.
 */

import { ServerConnection } from '@jupyterlab/services';

import { wire } from './generated/openapi';
import type { WorkspaceField } from './types';

function isWorkspaceField(value: unknown): value is WorkspaceField {
  return (wire.workspaceFields as readonly unknown[]).includes(value);
}

/**
 * A non-2xx answer, carrying the server's `message` and, for validation
 * errors, the `field` it is about.
 */
export class WorkspaceRequestError extends ServerConnection.ResponseError {
  constructor(
    response: Response,
    message: string,
    readonly field: WorkspaceField | null = null
  ) {
    super(response, message);
    this.name = 'WorkspaceRequestError';
  }

  /**
   * The HTTP status of the answer.
   */
  get status(): number {
    return this.response.status;
  }
}

/**
 * Turn a non-2xx response into an error with the best message available.
 */
export async function responseError(
  response: Response
): Promise<WorkspaceRequestError> {
  const text = await response.text().catch(() => '');
  let message = '';
  let field: WorkspaceField | null = null;
  try {
    const body = JSON.parse(text);
    if (body && typeof body === 'object') {
      message = String(body.message || body.reason || '');
      if (isWorkspaceField(body.field)) {
        field = body.field;
      }
    }
  } catch {
    // Not JSON (e.g. a proxy's HTML error page): fall through to the status.
  }
  if (!message) {
    message =
      `The server answered ${response.status} ${response.statusText}`.trim();
  }
  return new WorkspaceRequestError(response, message, field);
}
