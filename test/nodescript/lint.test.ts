import t from 'tap';
import { join } from 'node:path';
import { lintTree } from '../../src/nodescript/lint.js';
import { lintScriptText } from '../../src/nodescript/lint-text.js';
import { makeStatedir } from '../lib/statedir.js';

const lint = (text: string) => lintScriptText(text, true).map((f) => `${f.line} ${f.severity} ${f.message}`);

t.test('power commands that would act on the master', async (t) => {
  for (const [src, what] of [
    ['reboot', 'reboot'], ['/sbin/reboot -f', 'reboot'], ['sync; shutdown -h now', 'shutdown'], ['[ -x /x ] && poweroff', 'poweroff'],
    ['if true; then halt; fi', 'halt'], ['kexec -e', 'kexec'], ['init 6', 'init 6'], ['telinit 0', 'init 0'], ['systemctl reboot', 'reboot'],
  ]) {
    const found = lint(`#!/bin/sh\necho "echo x"\n${src}\n`);
    t.equal(found.length, 1, src);
    t.match(found[0], new RegExp(`^3 error runs ${what} on the master`), src);
  }
  for (const ok of ['echo reboot', 'echo "sync; reboot -f"', "echo 'halt'", 'echo x\n# reboot here', 'echo "init 6"', 'printf "kexec -e\\n"', 'cat <<EOF\nreboot\nEOF', 'echo rebooter', 'echo x # then reboot']) {
    t.same(lint(`#!/bin/sh\n${ok}\n`), [], `not flagged: ${ok}`);
  }
});

t.test('variables and backticks that expand on the master', async (t) => {
  t.match(lint('#!/bin/sh\necho "mount $DEVICE /mnt"\n'), ['2 warning $DEVICE in an echoed line expands on the master, where it is not set; for the node write \\$DEVICE']);
  t.match(lint('#!/bin/sh\necho mount ${ROOTDEV} /mnt\n'), [/\$ROOTDEV in an echoed line/]);
  t.match(lint('#!/bin/sh\necho "echo `hostname`"\n'), [/^2 warning backticks inside an echoed line run on the master/]);
  t.match(lint('#!/bin/sh\ncat <<EOF\nip addr add $ADDR dev eth0\nEOF\n'), [/^3 warning \$ADDR in a here-document/]);
  t.same(lint("#!/bin/sh\ncat <<'EOF'\nip addr add $ADDR dev eth0\nEOF\n"), [], 'a quoted here-document does not expand');
  for (const ok of [
    'echo "hostname $NODENAME"', 'echo "echo \\$DEVICE"', "echo 'echo $DEVICE'", 'echo "$ATTR_RACK"', 'X=1\necho "x=$X"',
    'for f in a b; do echo "$f"; done', 'read -r a b < /etc/x\necho "$a $b"', 'echo "$1 $? $$"', 'echo "MASTER_ARCH=$(uname -m)"',
  ]) t.same(lint(`#!/bin/sh\n${ok}\n`), [], `not flagged: ${ok}`);
});

t.test('secrets printed into the node\'s script: warned, with the protected-file way instead', async (t) => {
  const cases: [string, RegExp][] = [
    ["cat <<'EOF'\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\nEOF", /^3 warning a private key in the script reaches every node/],
    ['echo "-----BEGIN RSA PRIVATE KEY-----"', /^2 warning a private key in the script/],
    ['echo "cat > /etc/munge/munge.key <<X"\ncat /etc/munge/munge.key\necho X', /^3 warning prints the secret file \/etc\/munge\/munge\.key into the node's script/],
    ['echo x\nbase64 "/etc/ssh/ssh_host_ed25519_key"', /^3 warning prints the secret file \/etc\/ssh\/ssh_host_ed25519_key/],
    ['echo "bindpw s3cr3tPassw0rd" ', /^2 warning what looks like a bindpw is sent in the node's script/],
    ["cat <<'EOF'\nrootpw = hunter22\nEOF", /^3 warning what looks like a rootpw is sent/],
    ['printf \'password=%s\\n\' "topsecret"\necho "PASSWORD: Tr0ub4dor"', /^3 warning what looks like a password is sent/],
  ];
  for (const [src, want] of cases) {
    const found = lint(`#!/bin/sh\n${src}\n`);
    t.ok(found.some((f) => want.test(f)), `flagged: ${src.split('\n').join(' | ')} -> ${found.join('; ')}`);
    t.ok(found.every((f) => !/secret file|private key|looks like/.test(f) || /getfile/.test(f)), 'each says what to do instead');
  }
  for (const ok of [
    'cat /root/.ssh/id_ed25519.pub', 'echo "password: \\$PASSWORD"', "echo 'getfile nodefiles/$NODENAME/munge.key /etc/munge/munge.key'",
    'echo "PasswordAuthentication no"', "cat <<'EOF'\nrootpw {SSHA}\nEOF", 'awk -F: \'{print $1}\' /etc/passwd',
  ]) t.same(lint(`#!/bin/sh\n${ok}\n`).filter((f) => /secret|private key|looks like/.test(f)), [], `not flagged: ${ok}`);
});

t.test('an executable script that prints nothing', async (t) => {
  t.match(lint('#!/bin/sh\ntouch /tmp/x\n'), ['1 warning executable script that prints nothing: only its output reaches the node (a node-side script must be non-executable, starting with #!/bin/sh)']);
  t.same(lint('#!/usr/bin/perl\nprint "echo hi\\n";\n'), []);
});

t.test('the tree: skipped files, bad links, names, stray folders, with file and line', async (t) => {
  const dir = makeStatedir(t, {
    'nodescripts/init/all/10-reboot': '#!/bin/sh\necho "echo bye"\nreboot\n',
    'nodescripts/init/all/20-notes': { content: 'notes\n' },
    'nodescripts/init/all/30-node-side': { content: '#!/bin/sh\nreboot\necho $ANYTHING\n' },
    'nodescripts/init/all/40-dangling': { link: 'nowhere' },
    'nodescripts/init/all/50-outside': { link: '/bin/true' },
    'nodescripts/init/all/hello': '#!/bin/sh\necho "echo hi"\n',
    'nodescripts/init/group/compute/60-var': '#!/bin/sh\necho "echo $FOO"\n',
    'nodescripts/init/misc/70-x': '#!/bin/sh\necho "echo x"\n',
    'nodescripts/ready/node/n1/10-quiet': '#!/bin/sh\ntrue\n',
    'nodescripts/modules/m1/description': { content: 'a module\n' },
    'nodescripts/modules/m1/init/20-m1': '#!/bin/sh\necho "echo m1"\nhalt\n',
  });
  const root = join(dir, 'nodescripts');
  const all = (await lintTree(root, dir)).map((f) => `${f.file.slice(root.length + 1)}:${f.line}: ${f.severity}`);
  t.same(all.sort(), [
    'init/all/10-reboot:3: error',
    'init/all/20-notes:0: warning',
    'init/all/40-dangling:0: error',
    'init/all/50-outside:0: error',
    'init/all/hello:0: warning',
    'init/group/compute/60-var:2: warning',
    'init/misc:0: warning',
    'modules/m1/init/20-m1:3: error',
    'ready/node/n1/10-quiet:1: warning',
  ]);
  t.equal((await lintTree(root, dir, 'ready')).length, 1, 'one state only');
  await t.rejects(lintTree(root, dir, '../x'), /invalid provisionary state/);
});

t.test('the shipped nodescripts tree is clean', async (t) => {
  const findings = await lintTree(join(process.cwd(), 'nodescripts'), process.cwd());
  t.same(findings.map((f) => `${f.file}:${f.line}: ${f.message}`), []);
});
