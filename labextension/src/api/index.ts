// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The workspaces API, as the rest of the extension uses it.
 */

export * from './client';
export * from './errors';
export * from './ports';
export * from './service';
export * from './types';
