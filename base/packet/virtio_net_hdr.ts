/**
 * The `virtio_net_hdr` a TUN device opened with `IFF_VNET_HDR` puts before every packet (10 bytes; the
 * kernel's native byte order, little-endian on the hosts we run on): how the kernel hands over GSO
 * super-packets and packets whose checksum is still to be completed, and how we hand them back.
 *
 * ```
 * | flags | gso_type | hdr_len (2) | gso_size (2) | csum_start (2) | csum_offset (2) |
 * ```
 *
 * Reference: include/uapi/linux/virtio_net.h; wireguard-go's tun/offload_linux.go does the same dance.
 *
 * @module
 */

/** Length of the header (no `num_buffers`: TUNSETVNETHDRSZ is left at its default). */
export const VNET_HDR_LEN = 10;
/** flags: the transport checksum field holds only the pseudo-header sum; complete it from csum_start. */
export const VNET_F_NEEDS_CSUM = 1;
/** flags: the checksum was already verified. */
export const VNET_F_DATA_VALID = 2;
/** gso_type: not a super-packet. */
export const VNET_GSO_NONE = 0;
/** gso_type: TCP over IPv4. */
export const VNET_GSO_TCPV4 = 1;
/** gso_type: TCP over IPv6. */
export const VNET_GSO_TCPV6 = 4;
/** gso_type: UDP segmentation (USO). */
export const VNET_GSO_UDP_L4 = 5;

/** The flags byte. */
export function vnetFlags(b: Uint8Array): number {
  return b[0];
}

/** The GSO type (without the ECN bit). */
export function vnetGsoType(b: Uint8Array): number {
  return b[1] & 0x7f;
}

/** Length of the headers (L3 + L4) of a super-packet. */
export function vnetHdrLen(b: Uint8Array): number {
  return b[2] | (b[3] << 8);
}

/** Sets the headers length (after the TCP header grew or shrank). */
export function vnetSetHdrLen(b: Uint8Array, v: number): void {
  b[2] = v & 0xff;
  b[3] = v >>> 8;
}

/** Payload bytes per segment of a super-packet. */
export function vnetGsoSize(b: Uint8Array): number {
  return b[4] | (b[5] << 8);
}

/** Where checksumming starts, from the start of the IP packet. */
export function vnetCsumStart(b: Uint8Array): number {
  return b[6] | (b[7] << 8);
}

/** Where the checksum goes, from csum_start. */
export function vnetCsumOffset(b: Uint8Array): number {
  return b[8] | (b[9] << 8);
}

/** Clears the header: a plain packet with a complete checksum (what a generated reply is). */
export function vnetClear(b: Uint8Array): void {
  b.fill(0, 0, VNET_HDR_LEN);
}
