import { isUtf8 } from 'node:buffer';

/**
 * UTF-8 validation of a byte stream read in chunks, for the CSV layout pass: it must say which
 * records hold invalid bytes, so those rows are quarantined while the rest of the file loads.
 * A chunk that is valid as a whole (almost always) is checked natively in one call; only a chunk
 * with a problem is walked byte by byte, with `step`, alongside the record boundaries.
 */
export class Utf8Stream {
  /** Continuation bytes still expected by the sequence in progress. */
  private need = 0;
  /** Allowed range of the next continuation byte (narrower after E0, ED, F0 and F4: RFC 3629). */
  private low = 0x80;
  private high = 0xbf;

  /**
   * True when `data` continues the stream as valid UTF-8; the state then reflects its end (a
   * sequence may be left open for the next chunk). False leaves the state as it was, for `step`.
   */
  chunkIsValid(data: Buffer): boolean {
    const saved = { need: this.need, low: this.low, high: this.high };
    let start = 0;
    while (this.need > 0 && start < data.length) {
      if (!this.step(data[start++]!)) return this.restore(saved);
    }
    const end = openSequenceStart(data, start);
    if (!isUtf8(data.subarray(start, end))) return this.restore(saved);
    for (let i = end; i < data.length; i++) if (!this.step(data[i]!)) return this.restore(saved);
    return true;
  }

  /** Feeds one byte; false when it makes the text invalid (the stream then starts over at this byte). */
  step(byte: number): boolean {
    if (this.need > 0) {
      if (byte >= this.low && byte <= this.high) {
        this.need--;
        this.low = 0x80;
        this.high = 0xbf;
        return true;
      }
      this.need = 0;
      this.low = 0x80;
      this.high = 0xbf;
      this.start(byte);
      return false;
    }
    return this.start(byte);
  }

  /** True when the stream ended inside a sequence: the last bytes are a truncated character. */
  get open(): boolean {
    return this.need > 0;
  }

  private start(byte: number): boolean {
    if (byte < 0x80) return true;
    if (byte >= 0xc2 && byte <= 0xdf) this.need = 1;
    else if (byte >= 0xe0 && byte <= 0xef) {
      this.need = 2;
      if (byte === 0xe0) this.low = 0xa0;
      if (byte === 0xed) this.high = 0x9f;
    } else if (byte >= 0xf0 && byte <= 0xf4) {
      this.need = 3;
      if (byte === 0xf0) this.low = 0x90;
      if (byte === 0xf4) this.high = 0x8f;
    } else return false;
    return true;
  }

  private restore(saved: { need: number; low: number; high: number }): false {
    ({ need: this.need, low: this.low, high: this.high } = saved);
    return false;
  }
}

/** Where a multi-byte sequence that the chunk cuts off begins (data.length when none is cut off). */
function openSequenceStart(data: Buffer, from: number): number {
  for (let i = data.length - 1, back = 1; i >= from && back <= 4; i--, back++) {
    const byte = data[i]!;
    if ((byte & 0xc0) === 0x80) continue;
    const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return back < length ? i : data.length;
  }
  return data.length;
}
