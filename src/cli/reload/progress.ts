/**
 * The live display of `reload --wait`. On a terminal: one status line redrawn in place (counts and
 * the slowest nodes' current boot stage), with a permanent line per node as it finishes. Elsewhere
 * (a log, a pipe): one line per node whenever its stage changes, and when it finishes.
 */
export class ReloadProgress {
  readonly #out: NodeJS.WritableStream & { isTTY?: boolean };
  readonly #start: number;
  readonly #stages = new Map<string, string | null>();
  readonly #finished = new Set<string>();
  #drawn = false;

  constructor(out: NodeJS.WritableStream & { isTTY?: boolean }, names: readonly string[], start: number) {
    this.#out = out;
    this.#start = start;
    for (const n of names) this.#stages.set(n, null);
  }

  #elapsed(): string {
    return `${Math.round((Date.now() - this.#start) / 1000)}s`;
  }

  #clear(): void {
    if (this.#drawn) this.#out.write('\r\x1b[K');
    this.#drawn = false;
  }

  /** The node's latest boot stage (from its timeline). */
  stage(name: string, stage: string): void {
    if (this.#stages.get(name) === stage || this.#finished.has(name)) return;
    this.#stages.set(name, stage);
    if (!this.#out.isTTY) this.#out.write(`${name}  ${stage} (${this.#elapsed()})\n`);
  }

  lastStage(name: string): string | null {
    return this.#stages.get(name) ?? null;
  }

  done(name: string, text: string, _ok = true): void {
    if (this.#finished.has(name)) return;
    this.#finished.add(name);
    this.#clear();
    this.#out.write(`${name}  ${text} (${this.#elapsed()})\n`);
  }

  /** Redraws the status line (terminals only). */
  render(): void {
    if (!this.#out.isTTY) return;
    const waiting = [...this.#stages.keys()].filter((n) => !this.#finished.has(n));
    const sample = waiting.slice(0, 3).map((n) => `${n}: ${this.#stages.get(n) ?? 'waiting'}`).join(', ');
    this.#clear();
    this.#out.write(`reload: ${this.#finished.size}/${this.#stages.size} done, ${this.#elapsed()}${sample ? ` — ${sample}${waiting.length > 3 ? ', ...' : ''}` : ''}`);
    this.#drawn = true;
  }

  finish(): void {
    this.#clear();
  }
}
