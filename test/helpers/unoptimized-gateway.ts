/**
 * Child process of the publish-path allocation test, forked with `--no-opt`: the tier V8 keeps a publish
 * path in while it runs a few dozen times a second. A gateway on a free port, and beside it the floor: a
 * bare uWS app that reads each message through one view and `app.publish`es it (what any uWS server
 * allocates per message: uWS's ArrayBuffer and the view). On "start" it takes the heap meter's reading,
 * on "stop" it answers the JS heap bytes allocated since; "exit" ends it.
 */
import { App, type us_listen_socket, us_listen_socket_close, us_socket_local_port } from 'uWebSockets.js';
import { HeapAllocationMeter } from '../../src/metrics/heap-allocation';
import { startGateway } from './gateway';

function startFloor(): Promise<{ port: number; close: () => void }> {
  const app = App().ws('/*', {
    open: (ws) => {
      ws.subscribe('a');
    },
    message: (_ws, message) => {
      const view = new Uint8Array(message);
      if (view.length > 0) app.publish('a', view, false);
    },
  });
  return new Promise((resolve, reject) => {
    app.listen('127.0.0.1', 0, (socket: us_listen_socket | false) => {
      if (socket === false) return reject(new Error('floor: listen failed'));
      resolve({ port: us_socket_local_port(socket), close: () => us_listen_socket_close(socket) });
    });
  });
}

async function main(): Promise<void> {
  const g = await startGateway(['--client-publish', '--max-commands-per-second', '0']);
  const floor = await startFloor();
  const meter = new HeapAllocationMeter();
  let base = 0;
  process.on('message', (m: string) => {
    if (m === 'start') base = meter.sample();
    if (m === 'stop') return void process.send?.({ bytes: meter.sample() - base });
    if (m === 'exit') {
      meter.stop();
      floor.close();
      void g.stop().then(() => process.exit(0));
      return;
    }
    process.send?.({ ok: m });
  });
  process.send?.({ port: g.port, floorPort: floor.port });
}

void main();
