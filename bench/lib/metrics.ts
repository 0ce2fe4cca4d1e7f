import * as http from 'node:http';

/** Scrapes Prometheus text from `GET /metrics`; a name maps to the sum of its series (all labels). */
export function scrapeMetrics(port: number, timeoutMs = 10_000): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        if (res.statusCode !== 200) {
          reject(new Error(`GET /metrics: HTTP ${res.statusCode}`));
          return;
        }
        const out = new Map<string, number>();
        for (const line of body.split('\n')) {
          if (line === '' || line.startsWith('#')) continue;
          const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
          if (m) out.set(m[1], (out.get(m[1]) ?? 0) + Number(m[3]));
        }
        resolve(out);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET /metrics timed out (${timeoutMs} ms)`)));
    req.on('error', reject);
  });
}
