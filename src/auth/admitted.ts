import type { UpgradeResult } from '../metrics/stats';
import type { GatewayError } from '../protocol/codes';
import type { Grant } from './token-verifier';

/** A connection let in: what it may do and the topics the server subscribes it to on open. */
export interface Admitted {
  readonly grant: Grant;
  readonly serverTopics: readonly string[];
}

/** A connection kept out, with the upgrade result it is counted as. */
export interface Refused {
  readonly refused: Exclude<UpgradeResult, 'accepted'>;
  readonly error: GatewayError;
}

export type Admission = Admitted | Refused;

export const isRefused = (a: Admission): a is Refused => 'refused' in a;
