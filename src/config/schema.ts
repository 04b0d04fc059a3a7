/**
 * The one configuration of provisiond: a YAML file validated against this schema. Every key is
 * documented in etc/provisiond.yaml and the README. Unknown keys are refused (they are typos).
 */
import { isIPv4 } from 'node:net';
import { z } from 'zod';

const ipv4 = z.string().refine((s) => isIPv4(s), { message: 'not an IPv4 address' });
const port = z.number().int().min(0).max(65535);
const seconds = z.number().positive();

const subnet = z
  .object({
    /** Network in CIDR form, e.g. 10.0.0.0/24. */
    network: z.string().regex(/^\d+\.\d+\.\d+\.\d+\/\d{1,2}$/, 'not an IPv4 network in CIDR form'),
    range: z.tuple([ipv4, ipv4]),
    router: ipv4.nullable().default(null),
    dns: z.array(ipv4).default([]),
    /** Interface that receives this subnet's broadcasts (when not relayed). */
    interface: z.string().nullable().default(null),
  })
  .strict();

export const configSchema = z
  .object({
    statedir: z.string().min(1).default('.'),
    master: ipv4.default('10.0.0.1'),
    database: z
      .string()
      .regex(/^(sqlite:|postgres(ql)?:\/\/)/, 'must be sqlite:PATH or postgres://...')
      .default('sqlite:var/provisiond.db'),
    /**
     * PostgreSQL only: a file (relative to the statedir) whose first line is the password, used
     * when the URL has none; else PGPASSWORD or ~/.pgpass, as libpq does.
     */
    databasePasswordFile: z.string().min(1).nullable().default(null),
    log: z
      .object({
        level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
        format: z.enum(['auto', 'pretty', 'json']).default('auto'),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        enabled: z.boolean().default(true),
        listen: ipv4.default('0.0.0.0'),
        port: port.default(8080),
        /** Concurrent nodescript requests allowed from one address. */
        maxScriptRequestsPerAddress: z.number().int().positive().default(4),
        /** Seconds a request may take before it is cut (transfers are exempt while bytes flow). */
        requestTimeout: seconds.default(120),
        /** Large getfile bodies through sendfile(2) (the native addon, on a thread); false: buffered reads in Node. */
        sendfile: z.boolean().default(true),
        /**
         * Admission control: boot files and getfile bodies of 1 MiB and more sent at once; more wait
         * their turn in arrival order, their connection held open (0: no limit).
         */
        maxTransfers: z.number().int().min(0).default(64),
      })
      .strict()
      .prefault({}),
    tftp: z
      .object({
        enabled: z.boolean().default(true),
        listen: ipv4.default('0.0.0.0'),
        port: port.default(69),
        root: z.string().default('tftp'),
        /** Largest blksize granted (RFC 2348), e.g. to stay within the path MTU. */
        maxBlksize: z.number().int().min(8).max(65464).default(65464),
        /** Seconds before an unacknowledged block is sent again. */
        timeout: seconds.default(1),
        retries: z.number().int().min(1).default(6),
        /** Name of the generated iPXE script served over TFTP. */
        ipxeScript: z.string().default('boot.ipxe'),
        /** `auto`: octet transfers of files of 64 KiB and more run in the native pump; `js`: every transfer in Node. */
        engine: z.enum(['auto', 'js']).default('auto'),
        /** Longest busy-poll of a native pump for the next ACK, in microseconds (0: never poll). */
        pumpSpinUs: z.number().int().min(0).max(10_000).default(1000),
      })
      .strict()
      .prefault({}),
    dhcp: z
      .object({
        enabled: z.boolean().default(false),
        mode: z.enum(['server', 'proxy']).default('server'),
        interface: z.string().nullable().default('eth1'),
        listen: ipv4.default('0.0.0.0'),
        range: z.tuple([ipv4, ipv4]).default(['10.0.0.100', '10.0.0.199']),
        netmask: ipv4.default('255.255.255.0'),
        router: ipv4.nullable().default(null),
        dns: z.array(ipv4).default([]),
        domain: z.string().nullable().default(null),
        leaseTime: z.number().int().positive().default(3600),
        /** Probe an address with ICMP before offering it. */
        pingCheck: z.boolean().default(false),
        /**
         * How a new client's address is chosen: `iterative` (the next never-used one), `random`
         * among the free ones (several servers on one database seldom collide), `auto`: random
         * with a postgres:// database, iterative with SQLite.
         */
        allocator: z.enum(['auto', 'iterative', 'random']).default('auto'),
        /**
         * What an acknowledged lease survives: `fsync` (a power cut: the registry syncs every commit)
         * or `process` (a crash or kill -9 of the daemon, not a power cut). Applies to every commit of
         * the registry.
         */
        durability: z.enum(['fsync', 'process']).default('fsync'),
        /** Do not answer machines that are not registered (when autoRegister is off). */
        ignoreUnknown: z.boolean().default(false),
        /** What a disabled or `boot local` node is told: `local` (boot from disk) or `ignore`. */
        localBoot: z.enum(['local', 'ignore']).default('local'),
        /** Boot file per UEFI architecture: `snponly.efi` (default) or `ipxe.efi`. */
        efiBootFile: z.string().default('snponly.efi'),
        /** Extra subnets (relayed via giaddr, or on other interfaces). */
        subnets: z.array(subnet).default([]),
      })
      .strict()
      .prefault({}),
    defaults: z
      .object({
        nodeName: z.string().regex(/#+/, 'must contain # digits, e.g. n####').default('n####'),
        firstNode: z.number().int().min(0).default(0),
        totalNodes: z.number().int().positive().nullable().default(null),
        group: z.string().default('cluster'),
        vnfs: z.string().default(''),
        enabled: z.boolean().default(true),
        debug: z.number().int().min(0).default(0),
        autoRegister: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    vnfs: z
      .object({
        method: z.string().default('http'),
        /** host[:port] nodes fetch VNFS images from; default master:http.port. */
        master: z.string().nullable().default(null),
        /** URL path prefix of getfile; default `files`. */
        prefix: z.string().default(''),
        /** Debian mirror of `vnfs build --distro`; null = the machine's apt sources. */
        mirror: z.string().nullable().default(null),
      })
      .strict()
      .prefault({}),
    nodescripts: z
      .object({
        timeout: seconds.default(30),
        onError: z.enum(['continue', 'abort']).default('continue'),
        /** Script processes running at once, across all nodes; default 4 x cores. */
        concurrency: z.number().int().positive().nullable().default(null),
        /** Bytes of output one script may print before it is cut and treated as failed. */
        maxOutput: z.number().int().positive().default(64 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    node: z
      .object({
        /** Seconds without contact before a node shows as timed out. */
        timeout: seconds.default(600),
      })
      .strict()
      .prefault({}),
    ready: z
      .object({
        /** Seconds between check-ins of the ready-state agent. */
        interval: seconds.default(300),
      })
      .strict()
      .prefault({}),
    perceus: z
      .object({ enabled: z.boolean().default(false), listen: ipv4.default('0.0.0.0'), port: port.default(987) })
      .strict()
      .prefault({}),
    security: z
      .object({
        /**
         * Serve a node's scripts and iPXE script only to the address it holds. `auto`: on when
         * provisiond's DHCP hands out the addresses (mode server), off in proxy mode. `true`/`false`
         * are read as `on`/`off`.
         */
        verifySource: z
          .union([z.enum(['auto', 'on', 'off']), z.boolean().transform((b) => (b ? 'on' : 'off'))])
          .default('auto'),
        /** Per-boot node credentials: required on ready check-ins, node events and protected files. */
        nodeCredentials: z.boolean().default(true),
        /** Globs (relative to files/ or vnfs/, e.g. `files/keys/**`) served only to a node presenting its credential. */
        protect: z.array(z.string().min(1)).default([]),
        /** Bad or missing credentials (and requests for a node from an address it does not hold) one address may present per minute before it is refused at once (429). */
        maxBadCredentialsPerMinute: z.number().int().positive().default(60),
      })
      .strict()
      .prefault({}),
    api: z
      .object({
        /** The admin REST API (and later the web UI), on its own listener: never the node-facing HTTP port. */
        enabled: z.boolean().default(true),
        /** 127.0.0.1 by default; any other address needs `tls` (or `insecure: true`). */
        listen: ipv4.default('127.0.0.1'),
        /** 9870 was Perceus's control port. */
        port: port.default(9870),
        tls: z
          .object({ cert: z.string().min(1), key: z.string().min(1) })
          .strict()
          .nullable()
          .default(null),
        /** Serve plain HTTP on a non-loopback address (tokens then cross the network in clear). */
        insecure: z.boolean().default(false),
        /** Largest request body, bytes. */
        maxBody: z.number().int().positive().default(1048576),
        /** Seconds a web console stays open after its last viewer left (then the BMC's SOL is freed). */
        consoleGrace: seconds.default(10),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        /** A listener of its own serving only GET /metrics (the admin API's listener serves it too). */
        enabled: z.boolean().default(false),
        /** 127.0.0.1 by default; any other address needs `tls` (or `insecure: true`), as api.listen. */
        listen: ipv4.default('127.0.0.1'),
        port: port.default(9871),
        tls: z
          .object({ cert: z.string().min(1), key: z.string().min(1) })
          .strict()
          .nullable()
          .default(null),
        /** Serve plain HTTP on a non-loopback address (the scraper's token then crosses the network in clear). */
        insecure: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    power: z
      .object({
        concurrency: z.number().int().positive().default(16),
        timeout: seconds.default(30),
        retries: z.number().int().min(0).default(1),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** The validated configuration, frozen, with `statedir` made absolute by the loader. */
export type Config = z.infer<typeof configSchema> & { readonly source: string };
