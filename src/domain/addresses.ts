/** What kind of network address an IP is, as seen from DigitalOcean: only a public one can be reached from outside. */
export type AddressKind = 'loopback' | 'private' | 'public';

/** IPv4 dotted quad → 32-bit number, or null. */
export function ipv4ToInt(ip: string): number | null {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return null;
  return parts.reduce((acc, p) => ((acc << 8) | p) >>> 0, 0);
}

/** Whether IPv4 `address` is inside `base/bits`. */
export function inCidr(address: string, base: string, bits: number): boolean {
  const a = ipv4ToInt(address);
  const b = ipv4ToInt(base);
  if (a === null || b === null || !Number.isInteger(bits) || bits < 0 || bits > 32) return false;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ((a & mask) >>> 0) === ((b & mask) >>> 0);
}

const LOOPBACK_V4: [string, number][] = [['127.0.0.0', 8], ['0.0.0.0', 8]];
/** RFC 1918, carrier-grade NAT (RFC 6598) and link-local. */
const PRIVATE_V4: [string, number][] = [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['100.64.0.0', 10], ['169.254.0.0', 16]];

export function addressKind(ip: string): AddressKind {
  const v6 = ip.toLowerCase();
  if (v6.includes(':')) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(v6)?.[1];
    if (mapped) return addressKind(mapped);
    if (v6 === '::1' || v6 === '::') return 'loopback';
    return /^f[cd]|^fe[89ab]/.test(v6) ? 'private' : 'public';
  }
  if (LOOPBACK_V4.some(([base, bits]) => inCidr(ip, base, bits))) return 'loopback';
  return PRIVATE_V4.some(([base, bits]) => inCidr(ip, base, bits)) ? 'private' : 'public';
}
