/**
 * Showing text that came from outside (class names are folder names, file names are anyone's):
 * in a terminal, a control character could colour, move or hide text (ANSI escapes, `\r`) and a
 * bidirectional override could reorder it; in HTML and SVG, `<` or `&` could become markup; in
 * CSV, a comma or a line break would start another field or row.
 * Every place that shows such text to a person goes through one of these.
 */

/**
 * C0 controls (incl. ESC, CR, LF, TAB), DEL, C1 controls (incl. CSI), and the invisible
 * direction marks and overrides (LRM/RLM, ALM, LRE..RLO, LRI..PDI).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const visible = (c: string) => {
  const n = c.codePointAt(0)!;
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
};

/** One line of text safe for a terminal: control and direction characters shown as `\x1b`, `\u202e`. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, visible);
}

/** Like `printable`, line by line: the message's own line breaks stay, anything else is shown. */
export function printableLines(text: string): string {
  return text.split('\n').map(printable).join('\n');
}

/** Text for HTML (element content or a quoted attribute); control characters shown as by `printable`. */
export function escapeHtml(text: string): string {
  return printable(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** A name inside a message: quoted, with anything unprintable shown. */
export function quoted(name: string): string {
  return `'${printable(name)}'`;
}

/** One CSV field (RFC 4180): quoted when it holds a comma, quote, line break or edge space. */
export function csvField(s: string): string {
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}
