import { alloc } from './alloc';
import { brokercost } from './brokercost';
import { channels } from './channels';
import { cores } from './cores';
import { crossnode } from './crossnode';
import { delta } from './delta';
import { fanout } from './fanout';
import { hooks } from './hooks';
import { idle } from './idle';
import { latency } from './latency';
import { manytopics } from './manytopics';
import { micro } from './micro';
import { publishapi } from './publishapi';
import { publishcost } from './publishcost';
import { selftest } from './selftest';
import { soak } from './soak';
import { sse } from './sse';
import { Scenario } from './types';

/** In suite order: the generator's own figures first, so every report carries them. */
export const SCENARIOS: readonly Scenario[] = [micro, selftest, fanout, latency, manytopics, idle, publishapi, publishcost, alloc, crossnode, brokercost, soak, hooks, channels, delta, cores, sse];
