/** Wait, on real time, until a condition holds (polling every 5 ms), or fail naming what was awaited. */
export function waitUntil(pred: () => boolean, what: string, timeout_ms = 10_000): Promise<void> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (pred()) resolve();
      else if (performance.now() - start > timeout_ms) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 5);
    };
    tick();
  });
}
