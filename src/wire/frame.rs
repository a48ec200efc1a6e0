//! The gRPC length-prefixed message frame: one flag byte, a 4-byte big-endian
//! payload length, then the payload. gRPC-web sends its trailers in the same
//! frame with the top flag bit set, as the last frame of a body.

use bytes::{BufMut, Bytes, BytesMut};

/// Bytes before a frame's payload.
pub const PREFIX_LEN: usize = 5;
/// Flag of an uncompressed message.
pub const MESSAGE: u8 = 0;
/// Flag of a compressed message.
pub const COMPRESSED: u8 = 1;
/// Flag bit of a gRPC-web trailers frame.
pub const TRAILERS: u8 = 0x80;

/// A frame's flag and declared payload length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub flag: u8,
    pub len: u32,
}

impl Prefix {
    /// The prefix at the start of `bytes`, once they hold one.
    pub fn read(bytes: &[u8]) -> Option<Self> {
        let prefix: &[u8; PREFIX_LEN] = bytes.get(..PREFIX_LEN)?.try_into().ok()?;
        Some(Self::from_bytes(prefix))
    }

    fn from_bytes(prefix: &[u8; PREFIX_LEN]) -> Self {
        Self { flag: prefix[0], len: u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) }
    }

    pub fn is_trailers(self) -> bool {
        self.flag & TRAILERS != 0
    }
}

/// A payload longer than the 4-byte length of a frame can declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLong;

/// One frame: `flag`, the length, `payload`.
pub fn encode(flag: u8, payload: &[u8]) -> Result<Bytes, TooLong> {
    let len = u32::try_from(payload.len()).map_err(|_| TooLong)?;
    let mut frame = BytesMut::with_capacity(PREFIX_LEN + payload.len());
    frame.put_u8(flag);
    frame.put_u32(len);
    frame.put_slice(payload);
    Ok(frame.freeze())
}

/// The payload of `bytes` when they are exactly one frame with flag `flag`.
pub fn single(flag: u8, mut bytes: Bytes) -> Result<Bytes, NotOneFrame> {
    let prefix = Prefix::read(&bytes).filter(|prefix| prefix.flag == flag).ok_or(NotOneFrame::Prefix)?;
    let payload = bytes.split_off(PREFIX_LEN);
    if payload.len() != prefix.len as usize {
        return Err(NotOneFrame::Length { declared: prefix.len, got: payload.len() });
    }
    Ok(payload)
}

/// Why bytes are not the one frame expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotOneFrame {
    /// Shorter than a prefix, or a prefix with another flag.
    Prefix,
    /// The payload is not as long as its prefix says.
    Length { declared: u32, got: usize },
}

/// What [`Deframer::next`] finds next in a body.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A frame begins.
    Prefix(Prefix),
    /// Payload bytes of the current frame.
    Payload(&'a [u8]),
}

/// Follows frame boundaries through a body that arrives in chunks split
/// anywhere, without holding on to any payload.
#[derive(Debug, Default)]
pub struct Deframer {
    /// The current frame's prefix bytes seen so far.
    prefix: [u8; PREFIX_LEN],
    prefix_len: usize,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
}

impl Deframer {
    /// The next piece of `chunk`, which is advanced past it; `None` once the
    /// chunk is used up.
    pub fn next<'a>(&mut self, chunk: &mut &'a [u8]) -> Option<Piece<'a>> {
        while !chunk.is_empty() {
            if self.payload_left > 0 {
                let take = usize::try_from(self.payload_left).unwrap_or(usize::MAX).min(chunk.len());
                let (payload, rest) = chunk.split_at(take);
                self.payload_left -= take as u64;
                *chunk = rest;
                return Some(Piece::Payload(payload));
            }
            let take = (PREFIX_LEN - self.prefix_len).min(chunk.len());
            self.prefix[self.prefix_len..self.prefix_len + take].copy_from_slice(&chunk[..take]);
            self.prefix_len += take;
            *chunk = &chunk[take..];
            if self.prefix_len == PREFIX_LEN {
                self.prefix_len = 0;
                let prefix = Prefix::from_bytes(&self.prefix);
                self.payload_left = u64::from(prefix.len);
                return Some(Piece::Prefix(prefix));
            }
        }
        None
    }

    /// Payload bytes of the current frame still to come.
    pub fn payload_left(&self) -> u64 {
        self.payload_left
    }

    /// Between two frames: no prefix or payload byte outstanding.
    pub fn at_boundary(&self) -> bool {
        self.prefix_len == 0 && self.payload_left == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_its_flag_its_big_endian_length_and_its_payload() {
        let frame = encode(TRAILERS, b"grpc-status:0\r\n").unwrap();
        assert_eq!(&frame[..PREFIX_LEN], &[0x80, 0, 0, 0, 15]);
        assert_eq!(Prefix::read(&frame), Some(Prefix { flag: TRAILERS, len: 15 }));
        assert!(Prefix::read(&frame).unwrap().is_trailers());
        assert_eq!(Prefix::read(&frame[..4]), None);
        assert_eq!(single(TRAILERS, frame.clone()).unwrap(), &b"grpc-status:0\r\n"[..]);
        assert_eq!(single(MESSAGE, frame.clone()), Err(NotOneFrame::Prefix));
        assert_eq!(single(TRAILERS, frame.slice(..10)), Err(NotOneFrame::Length { declared: 15, got: 5 }));
        assert_eq!(single(MESSAGE, encode(MESSAGE, b"").unwrap()).unwrap(), Bytes::new());
    }

    #[test]
    fn every_frame_is_found_however_the_body_is_split() {
        let mut body = encode(MESSAGE, &[7; 10]).unwrap().to_vec();
        body.extend_from_slice(&encode(MESSAGE, b"").unwrap());
        body.extend_from_slice(&encode(TRAILERS, b"grpc-status:0\r\n").unwrap());
        for split in 0..=body.len() {
            let mut deframer = Deframer::default();
            let (mut prefixes, mut payload) = (Vec::new(), Vec::new());
            for mut chunk in [&body[..split], &body[split..]] {
                while let Some(piece) = deframer.next(&mut chunk) {
                    match piece {
                        Piece::Prefix(prefix) => prefixes.push(prefix),
                        Piece::Payload(bytes) => payload.extend_from_slice(bytes),
                    }
                }
            }
            assert!(deframer.at_boundary(), "{split}");
            let flags: Vec<_> = prefixes.iter().map(|prefix| (prefix.flag, prefix.len)).collect();
            assert_eq!(flags, [(MESSAGE, 10), (MESSAGE, 0), (TRAILERS, 15)], "{split}");
            assert_eq!(payload.len(), 25, "{split}");
        }
    }
}
