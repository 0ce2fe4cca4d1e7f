import { LatencyRecorder } from '../lib/histogram';
import { Stamp, nowUs } from '../lib/stamp';

const MAX_ERRORS = 5;

/**
 * What a subscriber does with each delivery: read the stamp from the frame bytes, record the
 * latency, check the sequence. Nothing here allocates per message; the clock is read once per socket
 * read (frames of one read arrived together; Node 20's performance.now() itself allocates 32 bytes).
 */
export class DeliveryRecorder {
  readonly latency = new LatencyRecorder();
  readonly errors: string[] = [];
  total = 0;
  gaps = 0;
  reordered = 0;
  unexpected = 0;
  private readonly stamp = new Stamp();
  private readNow = 0;

  /** Call before scanning a socket read. */
  startRead(): void {
    this.readNow = nowUs();
  }

  /** One data frame; `lastSeq` is the connection's last sequence per publisher id (or null). */
  onData(lastSeq: Float64Array | null, data: Buffer, start: number, end: number): void {
    const stamp = this.stamp;
    if (!stamp.read(data, start, end)) {
      this.unexpected++;
      this.noteError(`unexpected frame: ${data.toString('utf8', start, Math.min(end, start + 160))}`);
      return;
    }
    this.total++;
    this.latency.record(this.readNow - stamp.tsUs);
    if (lastSeq === null || stamp.pid >= lastSeq.length) return;
    const prev = lastSeq[stamp.pid];
    if (stamp.seq > prev) {
      this.gaps += stamp.seq - prev - 1;
      lastSeq[stamp.pid] = stamp.seq;
    } else {
      this.reordered++;
    }
  }

  noteError(e: string): void {
    if (this.errors.length < MAX_ERRORS) this.errors.push(e);
  }
}
