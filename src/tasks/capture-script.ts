/**
 * The script a node's ready agent runs for a capture: its root file system, one file system, the
 * contents of /proc /sys /dev /run /tmp and the exclude globs left out, as a tar to the one-time
 * upload URL. Pure: the text only (docs/capture.md explains the choices).
 *
 * - With curl (systemd VNFS): the tar streams (`curl -T -`, chunked): nothing is stored on the node.
 * - With busybox only (the demo VNFS): busybox wget cannot send a tar (measured with 1.35:
 *   `--post-file` sends the file up to its first NUL byte, and from a pipe what one read returns),
 *   so the tar is written to /tmp first (left out of the capture) and sent with busybox nc, in a
 *   request with its Content-Length; it costs the tar's size in /tmp for the time of the upload.
 * - GNU tar: `--one-file-system --exclude`; busybox tar has neither, so busybox `find -xdev -prune`
 *   lists the entries and tar takes them with `--no-recursion`.
 * A tar that fails before the upload tells the master through the same URL (`?failed=`).
 */
import { ALWAYS_EXCLUDED } from '../vnfs/capture.js';

/** `text` as one single-quoted shell word. */
function q(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

export function captureScript(o: { url: string; vnfs: string; task: string; exclude: readonly string[] }): string {
  const globs = [...ALWAYS_EXCLUDED.map((d) => `${d}/*`), ...o.exclude];
  const findPrune = globs.map((g) => `-path ${q(`.${g}`)}`).join(' -o ');
  const tarExcludes = globs.map((g) => `--exclude=${q(`.${g}`)}`).join(' ');
  return `#!/bin/sh
# provisiond: capture this node's root file system as vnfs ${o.vnfs} (task ${o.task})
URL=${q(o.url)}
CRED=
[ -r /etc/provisiond/credential ] && read -r CRED < /etc/provisiond/credential
set -f
tar_root() {
	if tar --version 2>/dev/null | grep -q 'GNU tar'; then
		tar -C / --one-file-system --numeric-owner --anchored ${tarExcludes} -cf - .
	else
		IFS='
'
		cd / && tar c --no-recursion -f - $(find . -xdev \\( ${findPrune} \\) -prune -o -print)
	fi
}
failed() {
	echo "capture failed: $1" >&2
	if command -v curl >/dev/null 2>&1; then
		curl -fsS -m 60 -X POST -H "Authorization: Bearer $CRED" --data '' "$URL?failed=$1" >/dev/null 2>&1
	else
		timeout 60 wget -q -O /dev/null --header "Authorization: Bearer $CRED" --post-data 'failed' "$URL?failed=$1" >/dev/null 2>&1
	fi
	exit 1
}
if command -v curl >/dev/null 2>&1; then
	tar_root 2>/tmp/provisiond-capture.err | curl -fsS -T - -H "Authorization: Bearer $CRED" "$URL" || exit 1
	exit 0
fi
TARFILE=/tmp/provisiond-capture.tar
mkdir -p /tmp
tar_root > "$TARFILE" 2>/tmp/provisiond-capture.err || { rc=$?; rm -f "$TARFILE"; failed "tar+exit+$rc"; }
SIZE=$(wc -c < "$TARFILE")
HOSTPORT=\${URL#http://}
HOSTPORT=\${HOSTPORT%%/*}
URLPATH=/\${URL#http://*/}
# busybox nc sends the request and prints the answer: its status line says how it went.
ANSWER=$({ printf 'PUT %s HTTP/1.1\\r\\nHost: %s\\r\\nAuthorization: Bearer %s\\r\\nContent-Length: %s\\r\\nConnection: close\\r\\n\\r\\n' "$URLPATH" "$HOSTPORT" "$CRED" $SIZE; cat "$TARFILE"; } | nc "\${HOSTPORT%:*}" "\${HOSTPORT##*:}")
rm -f "$TARFILE"
case $ANSWER in
"HTTP/1.1 200"*) echo "\${ANSWER##*
}" ;;
*) echo "capture upload failed: $ANSWER" >&2; [ -n "$ANSWER" ] || failed 'no+answer+to+the+upload'; exit 1 ;;
esac
`;
}
