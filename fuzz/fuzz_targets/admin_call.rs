//! The coordinator's admin socket reader (`coordinator::admin::read_admin_call`, the function the
//! socket reads every command with), fed the input as the stream: a frame announcing more than
//! the limit is refused before any body byte is read, a command that decodes reads back the
//! same after being written again, and nothing panics.
#![no_main]

use coordinator::admin::{AdminCall, read_admin_call};
use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;

/// The socket's frame limit (`coordinator::admin`'s `MAX_FRAME`).
const MAX_FRAME: u64 = 1 << 20;

fn frame(call: &AdminCall) -> Vec<u8> {
    let body = protocols::wire::encode(call);
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend(body);
    out
}

fuzz_target!(|data: &[u8]| {
    let mut stream = data;
    match block_on(read_admin_call(&mut stream)) {
        Ok(call) => {
            let len = data
                .first_chunk::<4>()
                .map(|b| u64::from(u32::from_be_bytes(*b)))
                .expect("a command was read without a length");
            assert!(len <= MAX_FRAME, "a frame over the limit was read");
            assert_eq!(
                stream.len() as u64,
                data.len() as u64 - 4 - len,
                "read past the frame"
            );
            std::hint::black_box(format!("{call:?}"));
            let written = frame(&call);
            let mut again = &written[..];
            let back = block_on(read_admin_call(&mut again)).expect("our own frame does not read");
            assert_eq!(frame(&back), written, "write/read changed the command");
        }
        Err(e) => {
            std::hint::black_box(e.to_string());
            if let Some(b) = data.first_chunk::<4>()
                && u64::from(u32::from_be_bytes(*b)) > MAX_FRAME
            {
                assert_eq!(
                    stream.len(),
                    data.len() - 4,
                    "an oversized frame's body was read"
                );
            }
        }
    }
});
