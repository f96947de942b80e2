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
 * The limits the server names in an error's `reason` when one stopped the
 * request: the caller's quota, the server's cap, a full disk of the Docker
 * host or of the Jupyter server (docs/openapi.yaml, `Error.reason`).
 */
export const LIMIT_REASONS = [
  'owner_quota',
  'server_capacity',
  'host_disk_full',
  'server_disk_full'
] as const;

export type LimitReason = (typeof LIMIT_REASONS)[number];

function isLimitReason(value: unknown): value is LimitReason {
  return (LIMIT_REASONS as readonly unknown[]).includes(value);
}

/**
 * A non-2xx answer, carrying the server's `message`, for validation errors
 * the `field` it is about, and the `limit` that stopped it, if one did.
 */
export class WorkspaceRequestError extends ServerConnection.ResponseError {
  constructor(
    response: Response,
    message: string,
    readonly field: WorkspaceField | null = null,
    readonly limit: LimitReason | null = null
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
  let limit: LimitReason | null = null;
  try {
    const body = JSON.parse(text);
    if (body && typeof body === 'object') {
      message = String(body.message || body.reason || '');
      if (isWorkspaceField(body.field)) {
        field = body.field;
      }
      if (isLimitReason(body.reason)) {
        limit = body.reason;
      }
    }
  } catch {
    // Not JSON (e.g. a proxy's HTML error page): fall through to the status.
  }
  if (!message) {
    message =
      `The server answered ${response.status} ${response.statusText}`.trim();
  }
  return new WorkspaceRequestError(response, message, field, limit);
}
