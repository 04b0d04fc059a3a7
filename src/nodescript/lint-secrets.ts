/**
 * The secret checks of `script lint` (issue 23): an executable nodescript's output is the node's
 * script, which anyone who can ask for it (or sniff it) reads. A private key, a password or the
 * content of a key file printed into it is a secret given away; it belongs in a protected file
 * (`<statedir>/nodefiles/<NODE>/`, `groupfiles/<GROUP>/`, `security.protect`) fetched with getfile.
 * Pure: one line in, a message or null out.
 */

const ADVICE = 'put it in nodefiles/<NODE>/ or groupfiles/<GROUP>/ under the statedir and fetch it on the node with getfile';
const KEY_BLOCK = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/;
const READS = /(?:^|[;&|({`]|\$\(|\b(?:then|do|else)\s)\s*(?:cat|base64|head|tail|xxd|od|sed|awk|tr|uuencode|openssl)\b[^|;&]*?((?:\/[\w.+-]+)*\/?(?:munge\.key|id_(?:rsa|dsa|ecdsa|ed25519)|ssh_host_\w+_key|[\w.+-]+\.key|[\w.+-]+\.keytab|[\w.+-]+\.pem|shadow|gshadow))(?![\w.+-]*\.pub)\b/;
const PASSWORD = /\b(password|passwd|passphrase|bindpw|rootpw|secret|api[_-]?key|access[_-]?key)\b["']?\s*[:=\s]\s*["']?([^\s"'$\\`]{4,})/i;
const PLACEHOLDER = /^(?:x+|\*+|null|none|changeme|required|optional|yes|no|true|false|file|prompt|[<{].*)$/i;

/**
 * Why `line` of an executable nodescript gives a secret away, or null. `printed`: the line is
 * text the node receives (an echoed line, here-document content), so a password in it is sent.
 */
export function secretInLine(line: string, printed: boolean): string | null {
  if (KEY_BLOCK.test(line)) return `a private key in the script reaches every node that asks for it: ${ADVICE}`;
  if (!printed) {
    const reads = READS.exec(line.replace(/["']/g, ''));
    if (reads) return `prints the secret file ${reads[1]} into the node's script: ${ADVICE}`;
  }
  const pw = printed ? PASSWORD.exec(line) : null;
  if (pw && !PLACEHOLDER.test(pw[2]!)) return `what looks like a ${pw[1]!.toLowerCase()} is sent in the node's script: ${ADVICE}`;
  return null;
}
