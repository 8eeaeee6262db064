/**
 * Separate "hosts" on one machine for multi-host tests: each host is a Linux network namespace
 * with its own IPv4 and IPv6 address and host name, joined to the others by a bridge that lives
 * in a namespace of its own (the machine's own network is not touched). Names resolve through
 * each namespace's /etc/hosts (`ip netns exec` bind-mounts /etc/netns/<ns>/hosts over it). A
 * host's link can be cut and restored, which partitions it from every other host.
 *
 * Needs root and iproute2; `netnsUnavailable()` says why not, for a test's skip message.
 *
 * Invariants: every namespace and /etc/netns entry made is removed by destroy(), also when
 * create() fails half-way; names carry the creating process's pid so parallel runs never clash.
 */
import { spawnSync, spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Host {
  /** Short name, e.g. "n0"; the fully qualified name is `${name}.${domain}`. */
  readonly name: string;
  readonly fqdn: string;
  /** The namespace's name (for `ip netns exec`). */
  readonly ns: string;
  readonly ipv4: string;
  readonly ipv6: string;
}

/** Why namespaces cannot be made here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "network namespaces need root";
  const ip = spawnSync("ip", ["-V"], { encoding: "utf8" });
  if (ip.error !== undefined || ip.status !== 0) return "iproute2 (`ip`) is not installed";
  const probe = `cprobe${process.pid % 100000}`;
  const add = spawnSync("ip", ["netns", "add", probe], { encoding: "utf8" });
  if (add.status !== 0) return `cannot create a network namespace: ${add.stderr.trim()}`;
  spawnSync("ip", ["netns", "del", probe]);
  return undefined;
}

function ip(args: string[]): void {
  const run = spawnSync("ip", args, { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`ip ${args.join(" ")}: ${run.stderr.trim()}`);
}

/** What another process needs to drive the same hosts (Hosts.attach). */
export interface HostsDescription {
  readonly tag: string;
  readonly domain: string;
  readonly hosts: readonly Host[];
}

export class Hosts {
  readonly hosts: Host[] = [];
  private readonly switchNs: string;
  private readonly made: string[] = [];

  private constructor(
    private readonly tag: string,
    readonly domain: string,
  ) {
    this.switchNs = `csw${tag}`;
  }

  /**
   * Hosts named `names` on one bridge: host i gets 10.77.0.(i+10)/24 and fd77::(i+10)/64, and
   * every namespace's /etc/hosts lists every host's fully qualified and short names (IPv4 and
   * IPv6). A test client is just another host (e.g. "client").
   */
  static create(names: readonly string[], domain = "consortia.test"): Hosts {
    const tag = String(process.pid % 100000);
    const hosts = new Hosts(tag, domain);
    try {
      hosts.build(names);
    } catch (err) {
      hosts.destroy();
      throw err;
    }
    return hosts;
  }

  /** The same hosts in another process (e.g. a scenario run on one of them); destroys nothing. */
  static attach(description: HostsDescription): Hosts {
    const hosts = new Hosts(description.tag, description.domain);
    hosts.hosts.push(...description.hosts);
    return hosts;
  }

  describe(): HostsDescription {
    return { tag: this.tag, domain: this.domain, hosts: this.hosts };
  }

  private build(names: readonly string[]): void {
    ip(["netns", "add", this.switchNs]);
    this.made.push(this.switchNs);
    ip(["-n", this.switchNs, "link", "add", "br0", "type", "bridge"]);
    ip(["-n", this.switchNs, "link", "set", "br0", "up"]);
    for (const [i, name] of names.entries()) {
      const ns = `c${name}${this.tag}`.slice(0, 15);
      const host: Host = {
        name,
        fqdn: `${name}.${this.domain}`,
        ns,
        ipv4: `10.77.0.${i + 10}`,
        ipv6: `fd77::${(i + 10).toString(16)}`,
      };
      ip(["netns", "add", ns]);
      this.made.push(ns);
      const port = `p${i}`;
      ip([
        "-n",
        ns,
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        port,
        "netns",
        this.switchNs,
      ]);
      ip(["-n", this.switchNs, "link", "set", port, "master", "br0", "up"]);
      ip(["-n", ns, "link", "set", "lo", "up"]);
      ip(["-n", ns, "addr", "add", `${host.ipv4}/24`, "dev", "eth0"]);
      ip(["-n", ns, "addr", "add", `${host.ipv6}/64`, "dev", "eth0", "nodad"]);
      ip(["-n", ns, "link", "set", "eth0", "up"]);
      this.hosts.push(host);
    }
    const lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost"];
    for (const h of this.hosts) lines.push(`${h.ipv4} ${h.fqdn} ${h.name}`);
    for (const h of this.hosts) lines.push(`${h.ipv6} ${h.fqdn} ${h.name}`);
    for (const h of this.hosts) {
      mkdirSync(join("/etc/netns", h.ns), { recursive: true });
      writeFileSync(join("/etc/netns", h.ns, "hosts"), `${lines.join("\n")}\n`);
    }
  }

  host(name: string): Host {
    const host = this.hosts.find((h) => h.name === name);
    if (host === undefined) throw new Error(`no host ${name}`);
    return host;
  }

  /** `argv` run on `name` (inside its namespace), as a child process. */
  spawn(name: string, argv: readonly string[], options: SpawnOptions = {}): ChildProcess {
    return spawn("ip", ["netns", "exec", this.host(name).ns, ...argv], options);
  }

  /** `argv` run on `name` to completion. */
  run(name: string, argv: readonly string[], timeoutMs = 60_000) {
    return spawnSync("ip", ["netns", "exec", this.host(name).ns, ...argv], {
      encoding: "utf8",
      timeout: timeoutMs,
    });
  }

  /** Cuts `name`'s link to the bridge: it can reach no other host, nor they it. */
  cut(name: string): void {
    ip(["-n", this.switchNs, "link", "set", `p${this.hosts.indexOf(this.host(name))}`, "down"]);
  }

  /** Restores `name`'s link. */
  heal(name: string): void {
    ip(["-n", this.switchNs, "link", "set", `p${this.hosts.indexOf(this.host(name))}`, "up"]);
  }

  /** Removes every namespace (and so every link) and /etc/netns entry made. */
  destroy(): void {
    for (const ns of this.made.reverse()) {
      spawnSync("ip", ["netns", "del", ns]);
      rmSync(join("/etc/netns", ns), { recursive: true, force: true });
    }
    this.made.length = 0;
  }
}
