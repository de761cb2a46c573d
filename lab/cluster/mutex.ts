// Why: the kubelet's passes and a node joining or leaving both rewrite the lab's layout (pods, nodes,
// state.json); running them one at a time keeps every write based on the latest layout.
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  /** Runs `fn` after every earlier holder finished; a failure releases the lock too. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
