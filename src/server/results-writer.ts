import { writeDecimal } from '../protocol/delivery';
import type { PublishReader } from '../protocol/publish-reader';

/**
 * Writes `{"results":[{"topic":…,"seq":…},…]}` for a batch that was published in full, into one reused
 * buffer: a reply object and its JSON string per request would cost more than the publishes themselves.
 * Topics are validated ASCII and need no escaping.
 */
export class ResultsWriter {
  private buf = Buffer.allocUnsafe(4096);

  /** The reply body: a view valid until the next write (uWS copies it when sending). */
  write(reader: PublishReader, seqs: Float64Array): Buffer {
    const n = reader.count;
    let need = 16;
    for (let i = 0; i < n; i++) need += 40 + reader.topicLength(i);
    if (need > this.buf.length) this.buf = Buffer.allocUnsafe(need * 2);
    const b = this.buf;
    let p = b.write('{"results":[', 0, 'latin1');
    for (let i = 0; i < n; i++) {
      p += b.write(i === 0 ? '{"topic":"' : ',{"topic":"', p, 'latin1');
      p = reader.copyTopic(i, b, p);
      p += b.write('","seq":', p, 'latin1');
      p = writeDecimal(b, p, seqs[i] as number);
      b[p++] = 0x7d; // }
    }
    p += b.write(']}', p, 'latin1');
    return b.subarray(0, p);
  }
}
