import { Packr, Unpackr } from 'msgpackr';

// Plain maps, no msgpackr record extension: any msgpack implementation must be able to read frames.
export const packr = new Packr({ useRecords: false });
export const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
