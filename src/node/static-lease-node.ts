/**
 * What both static-lease nodes (primary and replica) answer for features a
 * static lease or this build does not have: write forwarding (HALT locks,
 * POST /tx) and handoff (LiteFS: "static lease does not support handoff").
 */
import { ApiError } from '../http/api.js';

/** Thrown for endpoints whose feature (HALT, write forwarding) is not built. */
export class NotSupportedError extends ApiError {
  constructor(feature: string) {
    super(500, `not supported yet: ${feature}`);
  }
}

export abstract class StaticLeaseNode {
  async acquireHaltLock(): Promise<unknown> {
    throw new NotSupportedError('HALT locks (write forwarding)');
  }

  async releaseHaltLock(): Promise<void> {
    throw new NotSupportedError('HALT locks (write forwarding)');
  }

  async applyForwardedTx(): Promise<void> {
    throw new NotSupportedError('write forwarding');
  }

  async handoff(): Promise<void> {
    throw new Error('static lease does not support handoff');
  }
}
