import { fanout } from './fanout';
import { idle } from './idle';
import { latency } from './latency';
import { manytopics } from './manytopics';
import { selftest } from './selftest';
import { Scenario } from './types';

/** In suite order. */
export const SCENARIOS: readonly Scenario[] = [selftest, fanout, latency, manytopics, idle];
