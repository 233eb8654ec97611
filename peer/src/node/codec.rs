//! Length-prefixed frames for request-response: the size is checked before any body byte is read.

use futures::prelude::*;
use libp2p::StreamProtocol;
use std::io;

/// A request as received: its bytes, or the size it announced when that was over the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestFrame {
    /// The request body, at most the protocol's limit.
    Bytes(Vec<u8>),
    /// The request announced `len` bytes, over the limit `max`; nothing was read.
    Oversized {
        /// Announced length.
        len: u64,
        /// Limit.
        max: usize,
    },
}

/// Codec with per-protocol size limits. Frames are a u32 big-endian length then the body.
#[derive(Debug, Clone, Copy)]
pub struct FramedCodec {
    /// Largest request accepted.
    pub max_request: usize,
    /// Largest response accepted.
    pub max_response: usize,
}

async fn read_len<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<u64> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    Ok(u64::from(u32::from_be_bytes(len)))
}

async fn read_body<T: AsyncRead + Unpin + Send>(io: &mut T, len: u64) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    io.take(len).read_to_end(&mut body).await?;
    if body.len() as u64 != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "frame shorter than announced",
        ));
    }
    Ok(body)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
    max: usize,
) -> io::Result<()> {
    if bytes.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "frame over the protocol limit",
        ));
    }
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

impl libp2p::request_response::Codec for FramedCodec {
    type Protocol = StreamProtocol;
    type Request = RequestFrame;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<RequestFrame>
    where
        T: AsyncRead + Unpin + Send,
    {
        let len = read_len(io).await?;
        if len > self.max_request as u64 {
            return Ok(RequestFrame::Oversized {
                len,
                max: self.max_request,
            });
        }
        Ok(RequestFrame::Bytes(read_body(io, len).await?))
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let len = read_len(io).await?;
        if len > self.max_response as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "response of {len} bytes over the limit {}",
                    self.max_response
                ),
            ));
        }
        read_body(io, len).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: RequestFrame,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match req {
            RequestFrame::Bytes(bytes) => write_frame(io, &bytes, usize::MAX).await,
            RequestFrame::Oversized { .. } => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot send an oversized marker",
            )),
        }
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res, self.max_response).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use libp2p::request_response::Codec;

    fn proto() -> StreamProtocol {
        StreamProtocol::new("/test/1")
    }

    #[test]
    fn oversized_request_is_reported_without_reading_its_body() {
        futures::executor::block_on(async {
            let mut codec = FramedCodec {
                max_request: 8,
                max_response: 8,
            };
            let mut bytes = 1_000_000u32.to_be_bytes().to_vec();
            bytes.extend([0u8; 16]);
            let mut io = futures::io::Cursor::new(bytes);
            let frame = codec.read_request(&proto(), &mut io).await.unwrap();
            assert_eq!(
                frame,
                RequestFrame::Oversized {
                    len: 1_000_000,
                    max: 8
                }
            );
            assert_eq!(io.position(), 4);
        });
    }

    #[test]
    fn request_shorter_than_announced_is_an_error() {
        futures::executor::block_on(async {
            let mut codec = FramedCodec {
                max_request: 64,
                max_response: 8,
            };
            let mut bytes = 10u32.to_be_bytes().to_vec();
            bytes.extend([1u8; 3]);
            let err = codec
                .read_request(&proto(), &mut futures::io::Cursor::new(bytes))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        });
    }

    #[test]
    fn frames_round_trip() {
        futures::executor::block_on(async {
            let mut codec = FramedCodec {
                max_request: 64,
                max_response: 64,
            };
            let mut buf = futures::io::Cursor::new(Vec::new());
            codec
                .write_request(&proto(), &mut buf, RequestFrame::Bytes(vec![7; 20]))
                .await
                .unwrap();
            buf.set_position(0);
            assert_eq!(
                codec.read_request(&proto(), &mut buf).await.unwrap(),
                RequestFrame::Bytes(vec![7; 20])
            );
        });
    }
}
