import type { TemplatedApp } from 'uWebSockets.js';

/**
 * The acceptor pattern of uWS.js (not in its typings): an app in a worker thread gives its descriptor
 * (a number standing for the native app) to the main thread, whose listening app hands each new
 * connection to one child app in turn. Only connections move; pub/sub stays per app.
 */
export interface ChildApps {
  getDescriptor(): number;
  addChildAppDescriptor(descriptor: number): void;
  removeChildAppDescriptor(descriptor: number): void;
}

export const childApps = (app: TemplatedApp): ChildApps => app as unknown as ChildApps;
