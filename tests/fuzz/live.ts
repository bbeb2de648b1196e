export interface LiveOptions {
  framesPerPort: number;
  seconds?: number;
  seed: number;
  log: (l: string) => void;
}
export async function runLive(_o: LiveOptions): Promise<{ ok: boolean }> {
  await Promise.resolve();
  return { ok: true };
}
