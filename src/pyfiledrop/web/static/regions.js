// The bytes of one upload still to send (parallel-write mode), as sorted [start, end) ranges handed out chunk by chunk
// from the lowest. Parallel requests write neighbouring chunks, so the server's contiguous prefix — and the sha256 it
// computes along it — grows during the upload. Four requests each writing a quarter of the file left three quarters to
// be read back and hashed after the last byte, while the last request waited (benchmarks/browser.py).

export class Missing {
  constructor(ranges) {
    this.ranges = ranges.filter(([start, end]) => end > start).map(([start, end]) => [start, end]);
  }

  // What [0, size) lacks, given the server's received ranges (sorted, disjoint).
  static of(received, size) {
    const missing = [];
    let position = 0;
    for (const [from, to] of received) {
      if (from > position) missing.push([position, Math.min(from, size)]);
      position = Math.max(position, to);
    }
    if (position < size) missing.push([position, size]);
    return new Missing(missing);
  }

  get bytes() {
    return this.ranges.reduce((sum, [start, end]) => sum + end - start, 0);
  }

  // The next chunk to send, [start, end), or null when every byte is sent or being sent.
  take(chunkSize) {
    const range = this.ranges[0];
    if (!range) return null;
    const taken = [range[0], Math.min(range[1], range[0] + chunkSize)];
    range[0] = taken[1];
    if (range[0] >= range[1]) this.ranges.shift();
    return taken;
  }

  // A range that must be sent again (its request failed), in its place so that it goes next.
  giveBack([start, end]) {
    if (end <= start) return;
    const at = this.ranges.findIndex(([from]) => from > start);
    this.ranges.splice(at < 0 ? this.ranges.length : at, 0, [start, end]);
  }
}

// The parts of [start, end) that the received ranges do not cover.
export function uncovered(received, start, end) {
  const inside = received.filter(([from, to]) => to > start && from < end).map(([from, to]) => [Math.max(from, start), Math.min(to, end)]);
  return Missing.of(inside.map(([from, to]) => [from - start, to - start]), end - start).ranges.map(([from, to]) => [from + start, to + start]);
}
