//! The protobuf codec of the generated AuditService code: prost's, except that a
//! request message that does not decode is the client's fault. tonic's codec
//! answers INTERNAL with the decoder's text (type and field names); this one
//! answers INVALID_ARGUMENT in the service's own words.

use std::marker::PhantomData;

use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

use crate::error::Error;

/// Named by `codec_path` in `build.rs`.
pub struct AuditCodec<T, U> {
    prost: ProstCodec<T, U>,
}

impl<T, U> Default for AuditCodec<T, U> {
    fn default() -> Self {
        Self { prost: ProstCodec::default() }
    }
}

impl<T, U> Codec for AuditCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = AuditDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.prost.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        AuditDecoder { prost: self.prost.decoder(), _message: PhantomData }
    }
}

pub struct AuditDecoder<U> {
    prost: ProstDecoder<U>,
    _message: PhantomData<U>,
}

impl<U: prost::Message + Default> Decoder for AuditDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.prost.decode(buf).map_err(|status| {
            // The decoder's text names proto types and fields: for the log only.
            tracing::debug!(error = status.message(), "request message did not decode");
            Error::invalid("body", "is not a valid protobuf message of this method (malformed, or nested too deep)")
                .to_status()
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.prost.buffer_settings()
    }
}
