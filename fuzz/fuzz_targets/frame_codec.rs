//! The request-response frame codec (`peer::node::codec::FramedCodec`) every node reads requests
//! and responses with, fed the input as the stream, with each protocol's limits: a request over
//! the limit is reported without its body being read, a response over it is an error, nothing
//! longer than the limit is ever returned, and what is written reads back the same.
#![no_main]

use futures::executor::block_on;
use futures::io::Cursor;
use libfuzzer_sys::fuzz_target;
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;
use peer::node::codec::FramedCodec;
use peer::node::{Protocol, RequestFrame};

fn announced(data: &[u8]) -> Option<u64> {
    data.first_chunk::<4>()
        .map(|b| u64::from(u32::from_be_bytes(*b)))
}

fuzz_target!(|data: &[u8]| {
    for protocol in Protocol::ALL {
        let (max_request, max_response) = protocol.limits();
        let mut codec = FramedCodec {
            max_request,
            max_response,
        };
        let name = StreamProtocol::new(protocol.name());

        let mut io = Cursor::new(data);
        match block_on(codec.read_request(&name, &mut io)) {
            Ok(RequestFrame::Bytes(body)) => {
                let len = announced(data).expect("a frame without a length was read");
                assert_eq!(body.len() as u64, len, "body is not the announced length");
                assert!(body.len() <= max_request, "request over the limit was read");
                assert_eq!(
                    &data[4..4 + body.len()],
                    &body[..],
                    "body is not the input's"
                );
                assert_eq!(io.position(), 4 + len, "read past the frame");
                // What a requester writes reads back the same.
                let mut out = Cursor::new(Vec::new());
                block_on(codec.write_request(&name, &mut out, RequestFrame::Bytes(body.clone())))
                    .expect("writing a request failed");
                out.set_position(0);
                let again = block_on(codec.read_request(&name, &mut out)).expect("re-read failed");
                assert_eq!(again, RequestFrame::Bytes(body));
            }
            Ok(RequestFrame::Oversized { len, max }) => {
                assert_eq!(Some(len), announced(data));
                assert_eq!(max, max_request);
                assert!(
                    len > max as u64,
                    "a request within the limit was called oversized"
                );
                assert_eq!(
                    io.position(),
                    4,
                    "the body of an oversized request was read"
                );
            }
            Err(e) => {
                std::hint::black_box(e.to_string());
                if let Some(len) = announced(data) {
                    assert!(
                        len <= max_request as u64 && ((data.len() - 4) as u64) < len,
                        "a complete request within the limit was refused: {e}"
                    );
                }
            }
        }

        let mut io = Cursor::new(data);
        match block_on(codec.read_response(&name, &mut io)) {
            Ok(body) => {
                assert!(
                    body.len() <= max_response,
                    "response over the limit was read"
                );
                assert_eq!(Some(body.len() as u64), announced(data));
                assert_eq!(&data[4..4 + body.len()], &body[..]);
                let mut out = Cursor::new(Vec::new());
                block_on(codec.write_response(&name, &mut out, body.clone()))
                    .expect("writing a response within the limit failed");
                out.set_position(0);
                assert_eq!(
                    block_on(codec.read_response(&name, &mut out)).ok(),
                    Some(body)
                );
            }
            Err(e) => {
                std::hint::black_box(e.to_string());
                if let Some(len) = announced(data)
                    && len <= max_response as u64
                {
                    assert!(
                        ((data.len() - 4) as u64) < len,
                        "a complete response within the limit was refused: {e}"
                    );
                }
            }
        }
    }
});
