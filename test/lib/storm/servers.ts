/**
 * The servers a storm is run against, in the storm lab's server namespace (lab.ts):
 *   - provisiond, as an admin would run it: its own DHCP, TFTP and HTTP, the shipped nodescripts,
 *     the stage-1 kernel and initramfs and a VNFS image of the sizes asked for;
 *   - the peer: dnsmasq (DHCP + TFTP, the same iPXE loader) and nginx (HTTP) serving the same files,
 *     with the init nodescript as a static file (the same text provisiond renders, minus the
 *     per-node values and the credential): the best one can build here without provisiond.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ServeProcess } from '../daemon.js';
import { CLI, REPO } from '../paths.js';
import { sleep } from '../sleep.js';
import { processTree, type StormLab } from './lab.js';

export interface StormFiles {
  /** Stage-1 kernel bytes. */
  kernel: number;
  /** Stage-1 initramfs bytes. */
  initrd: number;
  /** VNFS image payload bytes (incompressible: the image is about this size). */
  image: number;
}

/** Writes `bytes` random bytes to `path` (in 1 MiB pieces). */
async function randomFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  for (let left = bytes; left > 0; left -= 1 << 20) {
    if (!out.write(randomBytes(Math.min(left, 1 << 20)))) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

export interface ProvisiondServer {
  daemon: ServeProcess;
  statedir: string;
  configPath: string;
  cli(args: string[]): string;
  /** GET /metrics of the admin API (a viewer token), from inside the server's namespace. */
  metrics(): Promise<string>;
}

/** A statedir with the shipped nodescripts, the stage-1 and a demo VNFS, and `provisiond serve` in the lab. */
export async function startProvisiond(lab: StormLab, dir: string, files: StormFiles, opts: { extraConfig?: string; http?: string } = {}): Promise<ProvisiondServer> {
  const statedir = join(dir, 'provisiond');
  mkdirSync(join(statedir, 'var'), { recursive: true });
  mkdirSync(join(statedir, 'tftp'), { recursive: true });
  cpSync(join(REPO, 'nodescripts'), join(statedir, 'nodescripts'), { recursive: true });
  await randomFile(join(statedir, 'tftp/vmlinuz'), files.kernel);
  await randomFile(join(statedir, 'tftp/initramfs.img'), files.initrd);
  mkdirSync(join(statedir, 'vnfs/demo/rootfs/sbin'), { recursive: true });
  mkdirSync(join(statedir, 'vnfs/demo/rootfs/opt'), { recursive: true });
  writeFileSync(join(statedir, 'vnfs/demo/config'), 'description: storm image\ncompression: 1\n');
  writeFileSync(join(statedir, 'vnfs/demo/rootfs/sbin/init'), '#!/bin/sh\n', { mode: 0o755 });
  await randomFile(join(statedir, 'vnfs/demo/rootfs/opt/payload'), files.image);
  const configPath = join(statedir, 'provisiond.yaml');
  writeFileSync(
    configPath,
    [
      `statedir: ${statedir}`,
      `master: ${lab.master}`,
      'database: sqlite:var/provisiond.db',
      // info: what an admin runs (a line per TFTP transfer and per nodescript run).
      'log: { level: info, format: json }',
      `http: { listen: 0.0.0.0, port: 8080${opts.http ? `, ${opts.http}` : ''} }`,
      'tftp: { enabled: true, listen: 0.0.0.0, port: 69 }',
      'dhcp:',
      '  enabled: true',
      '  mode: server',
      `  interface: ${lab.serverDev}`,
      `  range: [${lab.rangeStart}, ${lab.rangeEnd}]`,
      '  netmask: 255.255.0.0',
      'defaults: { group: cluster, vnfs: demo, autoRegister: true }',
      'api: { enabled: true, listen: 127.0.0.1, port: 9870 }',
      opts.extraConfig ?? '',
      '',
    ].join('\n'),
  );
  const cli = (args: string[]) =>
    execFileSync(process.execPath, [CLI, '--config', configPath, ...args], { cwd: REPO, encoding: 'utf8', env: { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0' }, maxBuffer: 64 << 20 });
  cli(['vnfs', 'image', 'demo']);
  const token = cli(['token', 'create', 'storm', '--role', 'viewer']).trim().split('\n').pop()!;
  const daemon = await ServeProcess.start({
    configPath,
    netns: { lab: lab.lab, ns: lab.serverNs },
    env: { ...process.env, NODE_ENV: 'production' },
    logFile: join(statedir, 'provisiond.log'),
  });
  const metrics = () =>
    lab.lab.run(lab.serverNs, 'curl', ['-sf', '--max-time', '20', '-H', `Authorization: Bearer ${token}`, 'http://127.0.0.1:9870/metrics']).catch((e: Error) => {
      throw new Error(`GET /metrics: ${e.message}`);
    });
  return { daemon, statedir, configPath, cli, metrics };
}

export interface PeerServer {
  pids(): number[];
  stop(): void;
}

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
const DNSMASQ = ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq'].find((p) => existsSync(p));

/** Why the peer cannot run here, or null. */
export function peerMissing(): string | null {
  if (!DNSMASQ) return 'dnsmasq is not installed (apt-get install dnsmasq)';
  if (!NGINX) return 'nginx is not installed (apt-get install nginx-light)';
  if (!existsSync('/usr/lib/ipxe/undionly.kpxe')) return 'iPXE is not installed (apt-get install ipxe)';
  return null;
}

/**
 * dnsmasq (DHCP for the PXE ROM, iPXE and the stage-1; TFTP of undionly.kpxe) and nginx (the iPXE
 * script, kernel, initramfs, a static init script, the image; the events and the ready check-in
 * answered 200 with an empty script) in the server namespace, serving the same files as provisiond.
 */
export async function startPeer(lab: StormLab, dir: string, provisiondStatedir: string): Promise<PeerServer> {
  const root = join(dir, 'peer');
  mkdirSync(join(root, 'www/boot'), { recursive: true });
  mkdirSync(join(root, 'www/files/vnfs/demo'), { recursive: true });
  mkdirSync(join(root, 'www/nodescripts'), { recursive: true });
  mkdirSync(join(root, 'tftp'), { recursive: true });
  mkdirSync(join(root, 'tmp'), { recursive: true });
  copyFileSync('/usr/lib/ipxe/undionly.kpxe', join(root, 'tftp/undionly.kpxe'));
  for (const f of ['vmlinuz', 'initramfs.img']) copyFileSync(join(provisiondStatedir, 'tftp', f), join(root, 'www/boot', f));
  for (const f of ['image.cpio.gz', 'image.cpio.gz.sha256']) copyFileSync(join(provisiondStatedir, 'vnfs/demo', f), join(root, 'www/files/vnfs/demo', f));
  const base = `http://${lab.master}:8080`;
  writeFileSync(join(root, 'www/boot/boot.ipxe'), `#!ipxe\nkernel ${base}/boot/vmlinuz initrd=initramfs.img provisiond=${base} || goto failed\ninitrd ${base}/boot/initramfs.img || goto failed\nboot || goto failed\n:failed\nexit 1\n`);
  // The static counterpart of the init script: the shipped nodescripts' node side with fixed values.
  const prelude = readFileSync(join(REPO, 'nodescripts/init/all/00-init'), 'utf8');
  const getfile = /cat <<'EOF'\n([\s\S]*?)\nEOF/.exec(prelude)?.[1] ?? '';
  writeFileSync(
    join(root, 'www/nodescripts/init'),
    `#!/bin/sh\nVNFS='demo'\nVNFSMASTER='${lab.master}:8080'\nVNFSPREFIX='files'\nVNFSMETHOD='http'\n${getfile}\ngetfile "vnfs/$VNFS/image.cpio.gz" /run/image.cpio.gz\n`,
  );
  writeFileSync(join(root, 'www/nodescripts/ready'), '#!/bin/sh\ntrue\n');
  const nginxConf = join(root, 'nginx.conf');
  const tmp = join(root, 'tmp');
  writeFileSync(
    nginxConf,
    `daemon off;\nworker_processes auto;\nuser root;\npid ${root}/nginx.pid;\nerror_log ${root}/nginx-error.log;\nevents { worker_connections 16384; }\nhttp {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n` +
      `  client_body_temp_path ${tmp}; proxy_temp_path ${tmp}; fastcgi_temp_path ${tmp}; uwsgi_temp_path ${tmp}; scgi_temp_path ${tmp};\n` +
      `  server {\n    listen ${lab.master}:8080 backlog=65535;\n    root ${root}/www;\n    location /nodes/ { return 200 ''; }\n  }\n}\n`,
  );
  const dnsConf = join(root, 'dnsmasq.conf');
  writeFileSync(
    dnsConf,
    [
      'port=0', 'user=root', `interface=${lab.serverDev}`, 'bind-interfaces', 'no-ping', 'dhcp-authoritative', 'log-dhcp',
      `dhcp-range=${lab.rangeStart},${lab.rangeEnd},255.255.0.0,1h`,
      `dhcp-lease-max=${lab.size + 10}`,
      `dhcp-leasefile=${join(root, 'dnsmasq.leases')}`,
      'enable-tftp', `tftp-root=${join(root, 'tftp')}`, `tftp-max=${Math.max(50, lab.size)}`,
      'dhcp-userclass=set:ipxe,iPXE',
      `dhcp-boot=tag:ipxe,${base}/boot/boot.ipxe`,
      'dhcp-boot=tag:!ipxe,undionly.kpxe',
      '',
    ].join('\n'),
  );
  const nginx = lab.lab.spawn(lab.serverNs, NGINX!, ['-c', nginxConf], { stdio: 'ignore' });
  const dnsmasq = lab.lab.spawn(lab.serverNs, DNSMASQ!, ['-k', '-C', dnsConf, `--log-facility=${join(root, 'dnsmasq.log')}`], { stdio: 'ignore' });
  for (const c of [nginx, dnsmasq]) c.on('error', () => {});
  await sleep(1000);
  if (nginx.exitCode !== null || dnsmasq.exitCode !== null) throw new Error(`the peer did not start: nginx ${nginx.exitCode}, dnsmasq ${dnsmasq.exitCode} (see ${root})`);
  return {
    pids: () => [...processTree(nginx.pid!), dnsmasq.pid!],
    stop: () => {
      // Its workers too: a killed master leaves them running.
      for (const pid of processTree(nginx.pid!).reverse()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      dnsmasq.kill('SIGKILL');
    },
  };
}
