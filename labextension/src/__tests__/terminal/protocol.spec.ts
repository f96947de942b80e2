// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

import {
  encodeHandshake,
  encodeInput,
  encodePause,
  encodeResize,
  encodeResume,
  TtydDecoder
} from '../../terminal/protocol';
import { FlowControl } from '../../terminal/flow';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A server frame: command byte followed by a payload. */
function frame(command: string, payload: Uint8Array | string): Uint8Array {
  const body =
    typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
  const out = new Uint8Array(body.length + 1);
  out[0] = command.charCodeAt(0);
  out.set(body, 1);
  return out;
}

describe('client frames', () => {
  it('sends the handshake as JSON with an empty AuthToken', () => {
    const bytes = encodeHandshake({ columns: 120, rows: 40 });
    expect(String.fromCharCode(bytes[0])).toBe('{');
    expect(JSON.parse(text(bytes))).toEqual({
      AuthToken: '',
      columns: 120,
      rows: 40
    });
  });

  it('prefixes input with 0 and encodes it as UTF-8', () => {
    const bytes = encodeInput('échо $((6*7))\r');
    expect(bytes[0]).toBe('0'.charCodeAt(0));
    expect(text(bytes.subarray(1))).toBe('échо $((6*7))\r');
    // 'é' and the Cyrillic 'о' take two bytes each.
    expect(bytes.length).toBe(1 + 'échо $((6*7))\r'.length + 2);
  });

  it('encodes a resize as 1 + JSON', () => {
    const bytes = encodeResize({ columns: 100, rows: 30 });
    expect(text(bytes)).toBe('1{"columns":100,"rows":30}');
  });

  it('never asks for a size ttyd refuses', () => {
    expect(text(encodeResize({ columns: 0, rows: -3 }))).toBe(
      '1{"columns":1,"rows":1}'
    );
    expect(text(encodeResize({ columns: NaN, rows: 24.7 }))).toBe(
      '1{"columns":1,"rows":24}'
    );
    expect(
      JSON.parse(text(encodeHandshake({ columns: 1e9, rows: 5 })))
    ).toEqual({
      AuthToken: '',
      columns: 65535,
      rows: 5
    });
  });

  it('encodes flow control as single bytes', () => {
    expect(text(encodePause())).toBe('2');
    expect(text(encodeResume())).toBe('3');
  });
});

describe('TtydDecoder', () => {
  it('decodes output, title and preferences', () => {
    const decoder = new TtydDecoder();
    expect(decoder.decode(frame('0', 'hello\r\n'))).toEqual({
      type: 'output',
      text: 'hello\r\n'
    });
    expect(decoder.decode(frame('1', 'bash (3f2a)'))).toEqual({
      type: 'title',
      title: 'bash (3f2a)'
    });
    expect(decoder.decode(frame('2', '{"fontSize":15}'))).toEqual({
      type: 'preferences',
      preferences: { fontSize: 15 }
    });
  });

  it('accepts an ArrayBuffer as the browser delivers it', () => {
    const bytes = frame('0', 'abc');
    const buffer = bytes.buffer.slice(
      bytes.byteOffset,
      bytes.byteOffset + bytes.byteLength
    );
    expect(new TtydDecoder().decode(buffer)).toEqual({
      type: 'output',
      text: 'abc'
    });
  });

  it('tolerates malformed preferences, unknown commands and empty frames', () => {
    const decoder = new TtydDecoder();
    expect(decoder.decode(frame('2', 'not json'))).toEqual({
      type: 'preferences',
      preferences: {}
    });
    expect(decoder.decode(frame('2', '[1,2]'))).toEqual({
      type: 'preferences',
      preferences: {}
    });
    expect(decoder.decode(frame('9', 'x'))).toEqual({
      type: 'unknown',
      command: '9'.charCodeAt(0)
    });
    expect(decoder.decode(new Uint8Array(0))).toEqual({
      type: 'unknown',
      command: -1
    });
  });

  it('joins a character split across two frames', () => {
    const euro = new TextEncoder().encode('€'); // E2 82 AC
    const decoder = new TtydDecoder();
    const first = decoder.decode(frame('0', euro.subarray(0, 1)));
    const second = decoder.decode(frame('0', euro.subarray(1)));
    expect(first).toEqual({ type: 'output', text: '' });
    expect(second).toEqual({ type: 'output', text: '€' });
  });

  it('joins a four-byte character split across three frames', () => {
    const emoji = new TextEncoder().encode('a🚀b');
    const decoder = new TtydDecoder();
    const parts = [
      emoji.subarray(0, 2),
      emoji.subarray(2, 4),
      emoji.subarray(4)
    ];
    const out = parts
      .map(part => decoder.decode(frame('0', part)))
      .map(message => (message.type === 'output' ? message.text : '?'))
      .join('');
    expect(out).toBe('a🚀b');
  });

  it('decodes any split of mixed-script output to the original text', () => {
    const original = 'ASCII, Ελληνικά, 日本語, emoji 🎉🧪, combining é\r\n';
    const bytes = new TextEncoder().encode(original);
    for (let cut = 0; cut <= bytes.length; cut++) {
      for (const step of [1, 3]) {
        const decoder = new TtydDecoder();
        let out = '';
        const first = decoder.decode(frame('0', bytes.subarray(0, cut)));
        out += first.type === 'output' ? first.text : '';
        for (let i = cut; i < bytes.length; i += step) {
          const message = decoder.decode(
            frame('0', bytes.subarray(i, i + step))
          );
          out += message.type === 'output' ? message.text : '';
        }
        out += decoder.flush();
        expect(out).toBe(original);
      }
    }
  });

  it('does not let a title frame disturb a split character', () => {
    const euro = new TextEncoder().encode('€');
    const decoder = new TtydDecoder();
    decoder.decode(frame('0', euro.subarray(0, 2)));
    expect(decoder.decode(frame('1', 'title'))).toEqual({
      type: 'title',
      title: 'title'
    });
    expect(decoder.decode(frame('0', euro.subarray(2)))).toEqual({
      type: 'output',
      text: '€'
    });
  });

  it('flushes a character cut off by the end of a connection', () => {
    const euro = new TextEncoder().encode('€');
    const decoder = new TtydDecoder();
    decoder.decode(frame('0', euro.subarray(0, 2)));
    expect(decoder.flush()).toBe('\uFFFD');
    // A fresh decoder for the next connection starts clean.
    expect(new TtydDecoder().decode(frame('0', 'ok'))).toEqual({
      type: 'output',
      text: 'ok'
    });
  });
});

describe('FlowControl', () => {
  it('pauses above the high watermark and resumes below the low one', () => {
    const flow = new FlowControl(100, 40);
    expect(flow.written(60)).toBe(false);
    expect(flow.written(60)).toBe(true); // 120 > 100: pause
    expect(flow.written(10)).toBe(false); // already paused: no second pause
    expect(flow.rendered(60)).toBe(false); // 70 left, not below 40
    expect(flow.rendered(40)).toBe(true); // 30 < 40: resume
    expect(flow.rendered(30)).toBe(false);
    // Everything rendered: a full window fits again before the next pause.
    expect(flow.written(100)).toBe(false);
    expect(flow.written(1)).toBe(true);
  });

  it('never counts below zero', () => {
    const flow = new FlowControl(10, 5);
    flow.rendered(50);
    // Had it counted to -40, 11 bytes would not pause.
    expect(flow.written(10)).toBe(false);
    expect(flow.written(1)).toBe(true);
  });

  it('refuses watermarks in the wrong order', () => {
    expect(() => new FlowControl(10, 10)).toThrow();
  });
});
