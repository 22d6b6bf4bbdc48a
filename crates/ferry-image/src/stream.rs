//! An image read front to back, once: the decompressed bytes of a file or a
//! pipe, with the head kept so that the partition table can be read again.
//!
//! A compressed image (or one on a pipe) cannot seek: a gzip trailer or an
//! xz index is at the end, and a pipe has no end to seek to. So every read
//! asks for an offset at or after the last one, except within the head.

use std::io::{self, Read};

/// How much of the stream's start stays readable at any time: the MBR, a
/// GPT header and its entry array (128 entries of 128 bytes after sector 2,
/// for 512- and 4096-byte sectors).
pub const HEAD_BYTES: usize = 1 << 20;

/// A read that the stream cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(
        "the image ends at byte {end}, before byte {wanted} that its partition table points to"
    )]
    Truncated { wanted: u64, end: u64 },
    #[error(
        "the image must be read again at byte {wanted}, after byte {position}; \
         a stream reads forward only (give the image as an uncompressed file)"
    )]
    Backward { wanted: u64, position: u64 },
    #[error("reading the image: {0}")]
    Io(#[from] io::Error),
}

/// A forward-only reader with random access to its head.
pub struct ForwardReader<R> {
    inner: R,
    head: Vec<u8>,
    /// Bytes consumed from `inner`, head included.
    position: u64,
    ended: bool,
}

impl<R: Read> ForwardReader<R> {
    pub fn new(inner: R) -> Self {
        ForwardReader {
            inner,
            head: Vec::new(),
            position: 0,
            ended: false,
        }
    }

    /// Bytes read from the stream so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Fills `buf` with the bytes at `offset`, or fewer when the stream
    /// ends first (the count is returned). Reading before the current
    /// position is an error unless the range lies in the head.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StreamError> {
        let end = offset.saturating_add(buf.len() as u64);
        if end <= HEAD_BYTES as u64 {
            self.fill_head(end as usize)?;
            let available = self
                .head
                .len()
                .saturating_sub(offset as usize)
                .min(buf.len());
            if available > 0 {
                let start = offset as usize;
                buf[..available].copy_from_slice(&self.head[start..start + available]);
            }
            return Ok(available);
        }
        let mut filled = 0;
        if offset < HEAD_BYTES as u64 {
            // The range starts in the head and goes on after it: the head
            // part is copied, the rest must follow on directly.
            self.fill_head(HEAD_BYTES)?;
            let start = offset as usize;
            let from_head = self.head.len().saturating_sub(start).min(buf.len());
            buf[..from_head].copy_from_slice(&self.head[start..start + from_head]);
            filled = from_head;
            if self.head.len() < HEAD_BYTES {
                return Ok(filled);
            }
            if self.position != offset + filled as u64 {
                return Err(StreamError::Backward {
                    wanted: offset + filled as u64,
                    position: self.position,
                });
            }
        } else {
            if offset < self.position {
                return Err(StreamError::Backward {
                    wanted: offset,
                    position: self.position,
                });
            }
            if self.position < HEAD_BYTES as u64 {
                self.fill_head(HEAD_BYTES)?;
            }
            self.skip_to(offset)?;
        }
        while filled < buf.len() && !self.ended {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => self.ended = true,
                Ok(n) => {
                    filled += n;
                    self.position += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(filled)
    }

    /// Like `read_at`, but a short read is an error naming the offset.
    pub fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), StreamError> {
        let got = self.read_at(offset, buf)?;
        if got < buf.len() {
            return Err(StreamError::Truncated {
                wanted: offset + buf.len() as u64,
                end: self.position,
            });
        }
        Ok(())
    }

    /// Reads to the end and returns the stream's whole length.
    pub fn drain(&mut self) -> Result<u64, StreamError> {
        if self.position < HEAD_BYTES as u64 {
            self.fill_head(HEAD_BYTES)?;
        }
        let mut sink = vec![0u8; 1 << 16];
        while !self.ended {
            match self.inner.read(&mut sink) {
                Ok(0) => self.ended = true,
                Ok(n) => self.position += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.position)
    }

    fn fill_head(&mut self, upto: usize) -> Result<(), StreamError> {
        let upto = upto.min(HEAD_BYTES);
        while self.head.len() < upto && !self.ended {
            let start = self.head.len();
            self.head.resize(upto, 0);
            match self.inner.read(&mut self.head[start..]) {
                Ok(0) => {
                    self.head.truncate(start);
                    self.ended = true;
                }
                Ok(n) => {
                    self.head.truncate(start + n);
                    self.position += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => self.head.truncate(start),
                Err(e) => {
                    self.head.truncate(start);
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    fn skip_to(&mut self, offset: u64) -> Result<(), StreamError> {
        let mut sink = vec![0u8; 1 << 16];
        while self.position < offset && !self.ended {
            let want = (offset - self.position).min(sink.len() as u64) as usize;
            match self.inner.read(&mut sink[..want]) {
                Ok(0) => self.ended = true,
                Ok(n) => self.position += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// A reader that hands out at most 7 bytes a call, as a pipe may.
    struct Trickle(std::io::Cursor<Vec<u8>>);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(7);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn the_head_reads_again_and_the_rest_reads_forward() {
        let bytes = data(HEAD_BYTES * 2 + 100);
        let mut reader = ForwardReader::new(Trickle(std::io::Cursor::new(bytes.clone())));
        let mut buf = [0u8; 16];
        reader
            .read_exact_at(HEAD_BYTES as u64 + 10, &mut buf)
            .unwrap();
        assert_eq!(&buf[..], &bytes[HEAD_BYTES + 10..HEAD_BYTES + 26]);
        reader.read_exact_at(512, &mut buf).unwrap();
        assert_eq!(&buf[..], &bytes[512..528]);
        match reader.read_exact_at(HEAD_BYTES as u64 + 1, &mut buf) {
            Err(StreamError::Backward { wanted, .. }) => assert_eq!(wanted, HEAD_BYTES as u64 + 1),
            other => panic!("expected Backward, got {other:?}"),
        }
        assert_eq!(reader.drain().unwrap(), bytes.len() as u64);
    }

    #[test]
    fn a_read_across_the_end_of_the_head_is_whole() {
        let bytes = data(HEAD_BYTES * 3);
        let mut reader = ForwardReader::new(Trickle(std::io::Cursor::new(bytes.clone())));
        let mut buf = vec![0u8; HEAD_BYTES + 4096];
        reader.read_exact_at(100, &mut buf).unwrap();
        assert_eq!(buf, bytes[100..100 + HEAD_BYTES + 4096]);
        let mut next = vec![0u8; 10];
        reader
            .read_exact_at((HEAD_BYTES + 4196) as u64, &mut next)
            .unwrap();
        assert_eq!(next, bytes[HEAD_BYTES + 4196..HEAD_BYTES + 4206]);
    }

    #[test]
    fn a_read_past_the_end_says_where_the_image_ends() {
        let mut reader = ForwardReader::new(std::io::Cursor::new(data(1000)));
        let mut buf = [0u8; 512];
        match reader.read_exact_at(600, &mut buf) {
            Err(StreamError::Truncated { end, .. }) => assert_eq!(end, 1000),
            other => panic!("expected Truncated, got {other:?}"),
        }
        assert_eq!(reader.drain().unwrap(), 1000);
    }
}
