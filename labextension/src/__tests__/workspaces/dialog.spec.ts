/**
 * @jest-environment @jupyterlab/testing/lib/jest-env.js
 */
// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

// The DOM shims JupyterLab's widgets need (this file only: the others run in node).
import '@jupyterlab/testing/lib/jest-shim.js';
import type { Profile, Workspace, WorkspaceSpec } from '../../api';
import { WorkspaceRequestError } from '../../api';
import { CreateWorkspaceDialog } from '../../workspaces/dialog';
import { texts } from '../../texts';
import { until } from '../wireserver';

const QUOTA =
  'You already have 5 running workspaces, the most this server allows (5). Stop or delete one first.';

describe('CreateWorkspaceDialog', () => {
  it("shows a quota refusal's message above the buttons and stays open", async () => {
    const asked: WorkspaceSpec[] = [];
    const refused = new WorkspaceRequestError(
      { status: 403, statusText: 'Forbidden' } as Response,
      QUOTA
    );
    const dialog = new CreateWorkspaceDialog({
      texts: texts(),
      create: spec => {
        asked.push(spec);
        return Promise.reject(refused);
      },
      initial: { name: 'demo', repo: 'octo/demo', branch: '' }
    });
    const result = dialog.launch();
    let settled = false;
    void result.then(() => (settled = true));
    await until(() => dialog.isAttached, 'dialog attached');
    dialog.resolve(1); // the Create button

    const formError = dialog.node.querySelector<HTMLElement>(
      '.jp-CodeWorkspaces-formError'
    )!;
    await until(() => !formError.hidden, 'form error shown');
    expect(formError.textContent).toBe(QUOTA);
    expect(formError.getAttribute('role')).toBe('alert');
    expect(asked).toEqual([{ name: 'demo', repo: 'octo/demo', branch: '' }]);
    // No field is blamed, the fields can be edited again, the dialog stays.
    expect(dialog.node.querySelectorAll('[aria-invalid="true"]')).toHaveLength(
      0
    );
    const name =
      dialog.node.querySelector<HTMLInputElement>('input[name="name"]')!;
    expect(name.disabled).toBe(false);
    await new Promise(resolve => setTimeout(resolve, 20));
    expect(settled).toBe(false);
    expect(dialog.isDisposed).toBe(false);
    dialog.resolve(0); // Cancel
    await result;
  });

  it('offers a profile picker when there are several, and sends the choice', async () => {
    const profiles: Profile[] = [
      {
        slug: 'plain',
        display_name: 'Plain',
        description: 'the usual tools',
        image: 'i:1',
        limits: {},
        default: true
      },
      {
        slug: 'python',
        display_name: 'Python data science',
        description: 'numpy',
        image: 'i:2',
        limits: { cpus: 2, memory: '4g' },
        default: false
      }
    ];
    const asked: WorkspaceSpec[] = [];
    const dialog = new CreateWorkspaceDialog({
      texts: texts(),
      profiles,
      create: spec => {
        asked.push(spec);
        return Promise.resolve({ id: 'w1', name: spec.name } as Workspace);
      },
      initial: { name: 'demo' }
    });
    const result = dialog.launch();
    await until(() => dialog.isAttached, 'dialog attached');
    const select = dialog.node.querySelector<HTMLSelectElement>(
      'select[name="profile"]'
    )!;
    expect(Array.from(select.options).map(o => o.textContent)).toEqual([
      'Plain',
      'Python data science'
    ]);
    expect(select.value).toBe('plain'); // the default
    select.value = 'python';
    select.dispatchEvent(new Event('change'));
    const hint = document.getElementById(`${select.id}-hint`)!;
    expect(hint.textContent).toBe('numpy · 2 CPUs, 4g memory');
    dialog.resolve(1);
    await result;
    expect(asked).toEqual([
      { name: 'demo', repo: '', branch: '', profile: 'python' }
    ]);
  });

  it('shows no picker for a single profile or none', () => {
    const one = new CreateWorkspaceDialog({
      texts: texts(),
      profiles: [
        {
          slug: 'only',
          display_name: 'Only',
          description: '',
          image: 'i:1',
          limits: {},
          default: false
        }
      ],
      create: () => Promise.reject(new Error('unused'))
    });
    expect(one.node.querySelector('select[name="profile"]')).toBeNull();
    one.dispose();
  });
});
