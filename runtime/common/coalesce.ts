// Reloads asked for while one runs: they make one more run right after it (with the newest files), not one each.

/** `run` wrapped so that calls during a run coalesce into one more run once it is over. */
export function coalesced(run: () => Promise<void>): () => void {
  let running = false;
  let again = false;
  const go = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    run()
      .catch(() => {})
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          go();
        }
      });
  };
  return go;
}
