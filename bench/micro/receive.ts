/**
 * Micro-benchmark of the generator's receive path against the `ws` package's Receiver on the same
 * bytes: 64 KiB reads of wsgate-style 64-byte-payload text frames. It is the evidence for writing the
 * frame scanner by hand (lib/frame.ts): time and JS heap bytes allocated per message.
 */
import { FrameScanner, FrameSink } from '../lib/frame';
import { nowUs, writePayload } from '../lib/stamp';
import { DeliveryRecorder } from '../gen/recorder';
import { timeAndAllocation } from '../lib/alloc';
import * as ws from 'ws';

// ws exports its Receiver (untyped in @types/ws): the code every ws client runs per frame.
const Receiver = (ws as unknown as { Receiver: ReceiverCtor }).Receiver;

interface ReceiverInstance {
  on(event: 'message', fn: (data: Buffer, isBinary: boolean) => void): void;
  write(chunk: Buffer): boolean;
}
type ReceiverCtor = new (opts: { isServer: boolean; skipUTF8Validation: boolean; allowSynchronousEvents: boolean }) => ReceiverInstance;

export interface ReceiveVariant {
  name: string;
  nsPerMessage: number;
  bytesPerMessage: number;
}

/** ~64 KiB of unmasked server text frames `{"t":"t0","s":N,"d":"<stamped payload>"}`. */
function framesBlock(payloadBytes: number): { block: Buffer; frames: number } {
  const parts: Buffer[] = [];
  let size = 0;
  let frames = 0;
  while (size < 64 * 1024) {
    const body = Buffer.from(`{"t":"t0","s":${frames + 1},"d":"${'x'.repeat(payloadBytes)}"}`);
    writePayload(body, body.indexOf('"d":"') + 5, payloadBytes, 0, frames + 1, nowUs());
    const head = body.length < 126 ? Buffer.from([0x81, body.length]) : Buffer.from([0x81, 126, body.length >> 8, body.length & 0xff]);
    parts.push(head, body);
    size += head.length + body.length;
    frames++;
  }
  return { block: Buffer.concat(parts), frames };
}

function measure(name: string, messages: number, run: () => void): ReceiveVariant {
  const { ns, bytes } = timeAndAllocation(run);
  return { name, nsPerMessage: Math.round((ns / messages) * 10) / 10, bytesPerMessage: Math.round((bytes / messages) * 10) / 10 };
}

export function runReceiveBenchmark(reads: number): ReceiveVariant[] {
  const { block, frames } = framesBlock(64);
  const messages = reads * frames;
  // Both variants do the generator's full per-message work (gen/recorder.ts).
  const scanned = new DeliveryRecorder();
  const sink: FrameSink = {
    onFrame(_op, _fin, data, start, end) {
      scanned.onData(null, data, start, end);
    },
    onProtocolError(reason) {
      throw new Error(reason);
    },
  };
  const scanner = new FrameScanner(sink);
  const viaWs = new DeliveryRecorder();
  const receiver = new Receiver({ isServer: false, skipUTF8Validation: false, allowSynchronousEvents: true });
  receiver.on('message', (data) => viaWs.onData(null, data, 0, data.length));

  const results = [
    measure('hand-written scanner + stamp + histogram', messages, () => {
      for (let r = 0; r < reads; r++) {
        scanned.startRead();
        scanner.push(block, 0, block.length);
      }
    }),
    measure('ws Receiver + stamp + histogram', messages, () => {
      for (let r = 0; r < reads; r++) {
        viaWs.startRead();
        receiver.write(block);
      }
    }),
  ];
  if (scanned.total !== messages * 2 || viaWs.total !== messages * 2) throw new Error('receive benchmark lost messages');
  return results;
}
