/**
 * The control messages a console client sends: text frames holding one JSON object (binary frames
 * are keystrokes). Pure: text in, a checked message or the reason it is refused out, so that a
 * wrong or hostile frame is answered and counted, never thrown at the socket's handler.
 *
 *     {"type":"resize","cols":120,"rows":40}   the client's terminal size (operators only apply it)
 */

/** The largest terminal side accepted: far beyond any screen, well within a pty's 16-bit winsize. */
export const MAX_TERMINAL_SIDE = 1000;
/** A control message is a few dozen bytes; anything longer is not one. */
const MAX_CONTROL_TEXT = 1024;

export type ConsoleControl = { type: 'resize'; cols: number; rows: number };

export type ParsedControl = { ok: true; message: ConsoleControl } | { ok: false; reason: string };

const side = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_TERMINAL_SIDE;

/** Checks one text frame from a console client. */
export function parseConsoleControl(text: string): ParsedControl {
  if (text.length > MAX_CONTROL_TEXT) return { ok: false, reason: `a control message is at most ${MAX_CONTROL_TEXT} characters (keystrokes go in binary frames)` };
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'a text frame must be a JSON control message (keystrokes go in binary frames)' };
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return { ok: false, reason: 'a control message is a JSON object with a "type"' };
  const m = msg as Record<string, unknown>;
  if (m.type !== 'resize') return { ok: false, reason: `unknown control message type ${JSON.stringify(m.type ?? null).slice(0, 40)} (known: resize)` };
  if (!side(m.cols) || !side(m.rows)) return { ok: false, reason: `resize needs whole numbers cols and rows from 1 to ${MAX_TERMINAL_SIDE}` };
  return { ok: true, message: { type: 'resize', cols: m.cols, rows: m.rows } };
}
