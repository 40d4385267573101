//! Length-prefixed frames (spec §5.1): a 4-byte big-endian body length, then the body.
//!
//! A receiver reads the 4-byte header, checks the announced length against its cap
//! *before* allocating, then reads exactly that many bytes. [`FrameDecoder`] does this for a
//! byte stream that arrives in pieces.

use crate::error::PeerMisbehaved;

/// Length of the frame header (spec §5.1).
pub const FRAME_HEADER_LEN: usize = 4;
/// Cap on a peer-to-peer frame body (spec §5.1).
pub const MAX_PEER_FRAME: u32 = 64 * 1024;
/// Cap on an app API frame body (spec §5.1).
pub const MAX_APP_FRAME: u32 = 1024 * 1024;

/// A local attempt to send a frame over the cap: a bug in the caller, never sent (spec §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame of {len} bytes exceeds the cap of {cap}")]
pub struct OversizeFrame {
    pub len: usize,
    pub cap: u32,
}

/// Frame `body`: header then body (spec §5.1).
pub fn encode_frame(body: &[u8], cap: u32) -> Result<Vec<u8>, OversizeFrame> {
    if body.len() > cap as usize {
        return Err(OversizeFrame {
            len: body.len(),
            cap,
        });
    }
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

/// The body length announced by a header, if within `cap` (spec §5.1).
pub fn body_len(header: [u8; FRAME_HEADER_LEN], cap: u32) -> Result<usize, PeerMisbehaved> {
    let announced = u32::from_be_bytes(header);
    if announced > cap {
        return Err(PeerMisbehaved::FrameTooLarge {
            announced: announced as u64,
            cap,
        });
    }
    Ok(announced as usize)
}

/// Incremental decoder for a stream of frames (spec §5.1).
#[derive(Debug)]
pub struct FrameDecoder {
    cap: u32,
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// A decoder that rejects any frame announcing more than `cap` bytes (spec §5.1).
    pub fn new(cap: u32) -> Self {
        Self {
            cap,
            buf: Vec::new(),
        }
    }

    /// Append received bytes. Buffered data never exceeds one header plus one capped body
    /// plus `bytes`, because [`FrameDecoder::next_frame`] rejects an oversize header first.
    /// Spec: §5.1.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame body, `Ok(None)` if more bytes are needed (spec §5.1).
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, PeerMisbehaved> {
        if self.buf.len() < FRAME_HEADER_LEN {
            return Ok(None);
        }
        let header = [self.buf[0], self.buf[1], self.buf[2], self.buf[3]];
        let len = body_len(header, self.cap)?;
        if self.buf.len() < FRAME_HEADER_LEN + len {
            return Ok(None);
        }
        let body = self.buf[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len].to_vec();
        self.buf.drain(..FRAME_HEADER_LEN + len);
        Ok(Some(body))
    }

    /// Call at end of stream: leftover bytes mean the stream ended inside a frame (spec §5.1).
    pub fn finish(&self) -> Result<(), PeerMisbehaved> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(PeerMisbehaved::TruncatedFrame)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn oversize_rejected_before_body() {
        let mut d = FrameDecoder::new(16);
        d.feed(&[0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            d.next_frame(),
            Err(PeerMisbehaved::FrameTooLarge { .. })
        ));
        assert!(encode_frame(&[0; 17], 16).is_err());
        assert_eq!(encode_frame(&[9; 2], 16).unwrap(), [0, 0, 0, 2, 9, 9]);
    }

    #[test]
    fn truncated() {
        let mut d = FrameDecoder::new(16);
        d.feed(&[0, 0, 0, 5, 1]);
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.finish(), Err(PeerMisbehaved::TruncatedFrame));
    }

    proptest! {
        #[test]
        fn any_split_reassembles(bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6), split in 1usize..7) {
            let stream: Vec<u8> = bodies.iter().flat_map(|b| encode_frame(b, 64).unwrap()).collect();
            let mut d = FrameDecoder::new(64);
            let mut got = Vec::new();
            for chunk in stream.chunks(split) {
                d.feed(chunk);
                while let Some(f) = d.next_frame().unwrap() { got.push(f); }
            }
            d.finish().unwrap();
            prop_assert_eq!(got, bodies);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut d = FrameDecoder::new(64);
            d.feed(&bytes);
            while let Ok(Some(_)) = d.next_frame() {}
        }
    }
}
