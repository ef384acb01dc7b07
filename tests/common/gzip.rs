//! Hand-made gzip bodies (RFC 1952 around RFC 1951 "stored" blocks), for upstreams that label a
//! body `Content-Encoding: gzip`: a valid one, and one that turns corrupt part-way. Stored
//! blocks carry their bytes uncompressed, so a test knows exactly which bytes decode before the
//! corruption, with no compression crate.

/// The 10-byte gzip header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A complete, valid gzip stream of `data` (one stored block, CRC-32 and length trailer).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = HEADER.to_vec();
    out.extend(stored_block(data, true));
    out.extend(crc32(data).to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}

/// The start of a gzip stream holding `prefix` (uncompressed) and announcing that more follows.
pub fn gzip_start(prefix: &[u8]) -> Vec<u8> {
    let mut out = HEADER.to_vec();
    out.extend(stored_block(prefix, false));
    out
}

/// A deflate block of the reserved type 3, which every inflater rejects: sent after
/// [`gzip_start`], the stream turns corrupt in the middle.
pub const CORRUPT_BLOCK: [u8; 5] = [0b0000_0111, 0xde, 0xad, 0xbe, 0xef];

/// [`gzip_start`] then [`CORRUPT_BLOCK`], as one body.
pub fn gzip_corrupt_after(prefix: &[u8]) -> Vec<u8> {
    [gzip_start(prefix), CORRUPT_BLOCK.to_vec()].concat()
}

/// One stored deflate block: header bits (byte-aligned), LEN, NLEN, the bytes.
fn stored_block(data: &[u8], last: bool) -> Vec<u8> {
    assert!(
        data.len() <= u16::MAX as usize,
        "one stored block holds at most 64 KiB"
    );
    let len = data.len() as u16;
    let mut out = vec![u8::from(last)];
    out.extend(len.to_le_bytes());
    out.extend((!len).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// CRC-32 (IEEE, reflected), bit by bit: test fixtures are small.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn crc32_matches_the_standard_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}
