/**
 * The script a node's ready agent runs for a capture: its root file system, one file system, the
 * contents of /proc /sys /dev /run /tmp and the exclude globs left out, as a tar to the one-time
 * upload URL. Pure: the text only (docs/capture.md explains the choices).
 *
 * - With curl (systemd VNFS): the tar streams (`curl -T -`, chunked): nothing is stored on the node.
 * - With busybox wget only (the demo VNFS): busybox wget cannot stream a request body (given a
 *   pipe, `--post-file` sends what one read returns), so the tar is written to /tmp first (left out
 *   of the capture), then posted; it costs the tar's size in /tmp for the time of the upload.
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
		timeout 60 wget -q -O /dev/null --header "Authorization: Bearer $CRED" --post-data '' "$URL?failed=$1" >/dev/null 2>&1
	fi
	exit 1
}
if command -v curl >/dev/null 2>&1; then
	tar_root 2>/tmp/provisiond-capture.err | curl -fsS -T - -H "Authorization: Bearer $CRED" "$URL" || exit 1
else
	TARFILE=/tmp/provisiond-capture.tar
	mkdir -p /tmp
	tar_root > "$TARFILE" 2>/tmp/provisiond-capture.err || { rc=$?; rm -f "$TARFILE"; failed "tar+exit+$rc"; }
	wget -q -O - --header "Authorization: Bearer $CRED" --post-file "$TARFILE" "$URL"
	rc=$?
	rm -f "$TARFILE"
	exit $rc
fi
`;
}
