import { Packr, Unpackr } from 'msgpackr';

// Plain maps, no msgpackr record extension: any msgpack implementation must be able to read frames.
export const packr = new Packr({ useRecords: false });
// 64-bit integers as numbers: a BigInt has no JSON form (JSON.stringify throws on it in the fan-out).
export const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
