// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The server most tests share (see server.ts); the tests find it through
 * POPEBOT_BASE_URL and POPEBOT_TOKEN.
 */

import { startServer } from './server';

export default async function globalSetup(): Promise<() => Promise<void>> {
  const server = await startServer({
    basePath: '/popebot-ui-test/',
    logName: 'server.log'
  });
  process.env.POPEBOT_BASE_URL = server.baseUrl;
  process.env.POPEBOT_TOKEN = server.token;
  process.env.POPEBOT_SERVER_LOG = server.logPath;
  return server.stop;
}
