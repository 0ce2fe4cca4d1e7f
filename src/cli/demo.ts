import type { Broker } from '../broker/broker';
import { Payload } from '../protocol/payload';
import { publishStart } from '../metrics/publish-clock';

export const DEMO_TOPIC = 'demo';
export const DEMO_CHAT_TOPIC = 'demo.chat';
const DEMO_INTERVAL_MS = 2000;

/** Publishes a small notification every couple of seconds, so a fresh gateway shows life. */
export function startDemo(broker: Broker): NodeJS.Timeout {
  const payload = new Payload();
  let n = 0;
  return setInterval(() => {
    n++;
    const data = { kind: 'notification', n, text: `demo notification #${n}`, at: new Date().toISOString() };
    void broker.publish(DEMO_TOPIC, payload.setValue(data, false), 'demo', publishStart());
  }, DEMO_INTERVAL_MS);
}
