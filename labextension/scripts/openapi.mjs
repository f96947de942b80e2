// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * The wire contract written once: generate src/api/generated/openapi.ts from
 * docs/openapi.yaml (types by openapi-typescript, plus the few values code
 * needs at run time: limits and field names). With --check, write nothing and
 * fail when the committed file differs from what the YAML gives.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString } from 'openapi-typescript';
import * as prettier from 'prettier';
import { parse } from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));
const extension = path.resolve(here, '..');
const specPath = path.resolve(extension, '..', 'docs', 'openapi.yaml');
const outPath = path.join(extension, 'src', 'api', 'generated', 'openapi.ts');

const HEADER = `// Generated from docs/openapi.yaml by labextension/scripts/openapi.mjs.
// Do not edit: change the YAML and run \`jlpm build:openapi\` in labextension/.
/* eslint-disable */
`;

/**
 * Values read from the spec that code needs at run time (types vanish).
 */
function runtimeValues(spec) {
  const schemas = spec.components.schemas;
  const create = schemas.WorkspaceCreate.properties;
  const need = (value, where) => {
    if (value === undefined) {
      throw new Error(`docs/openapi.yaml has no ${where}`);
    }
    return value;
  };
  const wire = {
    nameMaxLength: need(schemas.Name.maxLength, 'Name.maxLength'),
    repoMaxLength: need(
      create.repo.maxLength,
      'WorkspaceCreate.repo.maxLength'
    ),
    branchMaxLength: need(
      create.branch.maxLength,
      'WorkspaceCreate.branch.maxLength'
    ),
    workspaceFields: Object.keys(create),
    portMinimum: need(
      schemas.Port.properties.port.minimum,
      'Port.port.minimum'
    ),
    portMaximum: need(
      schemas.Port.properties.port.maximum,
      'Port.port.maximum'
    ),
    secretFields: ['name', ...Object.keys(schemas.SecretPut.properties)],
    secretValueMaxLength: need(
      schemas.SecretPut.properties.value.maxLength,
      'SecretPut.value.maxLength'
    )
  };
  return `
/**
 * Limits and field names of the wire contract, for code that needs them at
 * run time.
 */
export const wire = ${JSON.stringify(wire)} as const;
`;
}

async function generate() {
  const text = fs.readFileSync(specPath, 'utf8');
  const ast = await openapiTS(text);
  const source = HEADER + astToString(ast) + runtimeValues(parse(text));
  const options = (await prettier.resolveConfig(outPath)) ?? {};
  return prettier.format(source, { ...options, filepath: outPath });
}

const generated = await generate();
const current = fs.existsSync(outPath) ? fs.readFileSync(outPath, 'utf8') : '';
const relative = path.relative(process.cwd(), outPath);
if (process.argv.includes('--check')) {
  if (current !== generated) {
    console.error(
      `${relative} is stale: it does not match docs/openapi.yaml.\n` +
        'Run `jlpm build:openapi` in labextension/ and commit the result.'
    );
    process.exit(1);
  }
  console.log(`${relative} matches docs/openapi.yaml.`);
} else if (current !== generated) {
  // Written only on a change, so builds keyed on file times stay quiet.
  fs.mkdirSync(path.dirname(outPath), { recursive: true });
  fs.writeFileSync(outPath, generated);
  console.log(`wrote ${relative}`);
}
