/**
 * Everything the benchmark must undo (stop a daemon, unmount, delete a temp
 * folder) is pushed here as it is created, and undone in reverse order on the
 * normal path, on an error, and on SIGINT/SIGTERM, so no mount outlives a run.
 */
export type CleanupAction = () => Promise<void> | void;

export class CleanupStack {
  private readonly actions: { label: string; run: CleanupAction }[] = [];

  /** Registers an action; the returned function runs it early (once) and drops it. */
  push(label: string, run: CleanupAction): () => Promise<void> {
    const entry = { label, run };
    this.actions.push(entry);
    return async () => {
      const at = this.actions.indexOf(entry);
      if (at < 0) return;
      this.actions.splice(at, 1);
      await entry.run();
    };
  }

  /** Runs every remaining action, newest first; a failing action is reported and the rest still run. */
  async runAll(): Promise<void> {
    while (this.actions.length > 0) {
      const entry = this.actions.pop();
      if (entry === undefined) break;
      try {
        await entry.run();
      } catch (err) {
        process.stderr.write(`cleanup (${entry.label}) failed: ${errorText(err)}\n`);
      }
    }
  }
}

/** On SIGINT/SIGTERM: undo everything, then exit with the conventional 128+signal status. */
export function cleanUpOnSignals(stack: CleanupStack): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals, code: number): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${signal}: stopping daemons and unmounting\n`);
    void stack.runAll().finally(() => process.exit(code));
  };
  process.on('SIGINT', () => onSignal('SIGINT', 130));
  process.on('SIGTERM', () => onSignal('SIGTERM', 143));
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
