// Copyright (c) jupyter-popebot-code contributors.
// Distributed under the terms of the Modified BSD License.

/**
 * Flow control of terminal output: the backpressure between ttyd's stream
 * and xterm.js's rendering.
 */

/**
 * Decides when to ask ttyd to pause and resume output, so that a burst of
 * output cannot outrun xterm.js's rendering and grow the page's memory
 * without bound (the same watermark scheme as ttyd's own client).
 */
export class FlowControl {
  /**
   * @param highWater - bytes waiting to be rendered above which output pauses
   * @param lowWater - bytes waiting below which a paused stream resumes
   */
  constructor(highWater = 512 * 1024, lowWater = 128 * 1024) {
    if (lowWater >= highWater) {
      throw new Error('lowWater must be below highWater');
    }
    this._highWater = highWater;
    this._lowWater = lowWater;
  }

  /**
   * Record bytes handed to the terminal; true when output should pause now.
   */
  written(bytes: number): boolean {
    this._pending += bytes;
    if (!this._paused && this._pending > this._highWater) {
      this._paused = true;
      return true;
    }
    return false;
  }

  /**
   * Record bytes the terminal rendered; true when output should resume now.
   */
  rendered(bytes: number): boolean {
    this._pending = Math.max(0, this._pending - bytes);
    if (this._paused && this._pending < this._lowWater) {
      this._paused = false;
      return true;
    }
    return false;
  }

  private _highWater: number;
  private _lowWater: number;
  private _pending = 0;
  private _paused = false;
}
