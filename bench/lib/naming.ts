/** Topic names shared by the generator and the scenarios. */
export function topicName(i: number): string {
  return `t${i}`;
}

/**
 * Source address for the i-th connection: spreading over 127.0.0.2–127.0.0.254 gives each address
 * its own ephemeral port range, so tens of thousands of connections fit.
 */
export function localAddressFor(i: number): string {
  return `127.0.0.${2 + (i % 253)}`;
}
