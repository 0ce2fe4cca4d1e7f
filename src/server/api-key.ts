import { timingSafeEqual } from 'node:crypto';
import { bearer } from './http-reply';

/** Whether an Authorization header carries the API key (always true when no key is configured). */
export function apiKeyCheck(apiKey: string): (authorization: string) => boolean {
  if (apiKey === '') return () => true;
  const expected = Buffer.from(apiKey);
  return (authorization) => {
    const given = Buffer.from(bearer(authorization));
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
}
