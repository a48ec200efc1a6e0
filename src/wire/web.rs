//! What gRPC-web adds to the gRPC frame: the trailers frame that ends a body,
//! whose payload is an HTTP/1 header block (`name:value\r\n` per field), and the
//! text mode, where the body is base64 and each chunk is padded on its own.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};

use super::frame::{self, TooLong};

/// How a gRPC-web body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Binary,
    /// `application/grpc-web-text`: base64.
    Text,
}

impl Encoding {
    /// The encoding a content type names (binary for anything but the text mode).
    pub fn of(headers: &HeaderMap) -> Self {
        let text = headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|content_type| content_type.as_bytes().starts_with(b"application/grpc-web-text"));
        if text { Self::Text } else { Self::Binary }
    }

    /// `bytes` as they go on the wire in this encoding.
    pub fn encode(self, bytes: Bytes) -> Bytes {
        match self {
            Self::Binary => bytes,
            Self::Text => Bytes::from(STANDARD.encode(&bytes)),
        }
    }
}

/// The trailers frame that carries `fields`.
pub fn trailers_frame<'a>(fields: impl IntoIterator<Item = (&'a str, &'a HeaderValue)>) -> Result<Bytes, TooLong> {
    let mut block = Vec::new();
    for (name, value) in fields {
        block.extend_from_slice(name.as_bytes());
        block.push(b':');
        block.extend_from_slice(value.as_bytes());
        block.extend_from_slice(b"\r\n");
    }
    frame::encode(frame::TRAILERS, &block)
}

/// The value of the field `name` (lowercase) in a trailers frame's payload.
pub fn trailer<'a>(block: &'a [u8], name: &str) -> Option<&'a [u8]> {
    block.split(|&byte| byte == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&byte| byte == b':')?;
        let (field, value) = (&line[..colon], &line[colon + 1..]);
        field.trim_ascii().eq_ignore_ascii_case(name.as_bytes()).then(|| value.trim_ascii())
    })
}

/// Decodes a text-mode body chunk by chunk. Chunks may split anywhere; a padded
/// quad ends one base64 text, and the next may follow it.
#[derive(Debug, Default)]
pub struct TextDecoder {
    /// Characters of a quad not complete yet.
    pending: Vec<u8>,
}

impl TextDecoder {
    /// The bytes `chunk` completes.
    pub fn decode(&mut self, chunk: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
        self.pending.extend_from_slice(chunk);
        let whole = self.pending.len() / 4 * 4;
        let mut out = Vec::with_capacity(whole / 4 * 3);
        let mut start = 0;
        for end in (4..=whole).step_by(4) {
            if self.pending[end - 1] == b'=' {
                STANDARD.decode_vec(&self.pending[start..end], &mut out)?;
                start = end;
            }
        }
        STANDARD.decode_vec(&self.pending[start..whole], &mut out)?;
        self.pending.drain(..whole);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_fields_are_found_by_name() {
        let status = HeaderValue::from_static("16");
        let message = HeaderValue::from_static("no token: here");
        let frame = trailers_frame([("grpc-status", &status), ("grpc-message", &message)]).unwrap();
        let block = frame::single(frame::TRAILERS, frame).unwrap();
        assert_eq!(&block[..], b"grpc-status:16\r\ngrpc-message:no token: here\r\n");
        assert_eq!(trailer(&block, "grpc-status"), Some(&b"16"[..]));
        assert_eq!(trailer(&block, "grpc-message"), Some(&b"no token: here"[..]));
        assert_eq!(trailer(b"Grpc-Status: 7\r\n", "grpc-status"), Some(&b"7"[..]));
        assert_eq!(trailer(&block, "grpc-status-details-bin"), None);
    }

    #[test]
    fn text_mode_decodes_across_any_split_and_padding() {
        let first = b"\0\0\0\0\x02xy";
        let second = b"\x80\0\0\0\x0fgrpc-status:0\r\n";
        let mut wire = STANDARD.encode(first).into_bytes();
        wire.extend(STANDARD.encode(second).into_bytes());
        let whole: Vec<u8> = first.iter().chain(second).copied().collect();
        for split in 0..=wire.len() {
            let mut decoder = TextDecoder::default();
            let mut decoded = decoder.decode(&wire[..split]).unwrap();
            decoded.extend(decoder.decode(&wire[split..]).unwrap());
            assert_eq!(decoded, whole, "{split}");
        }
        assert!(TextDecoder::default().decode(b"!!!!").is_err());
    }

    #[test]
    fn the_content_type_names_the_encoding() {
        let mut headers = HeaderMap::new();
        assert_eq!(Encoding::of(&headers), Encoding::Binary);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc-web-text+proto"));
        assert_eq!(Encoding::of(&headers), Encoding::Text);
        assert_eq!(Encoding::Text.encode(Bytes::from_static(b"\x80")), "gA==");
    }
}
