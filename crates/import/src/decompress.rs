//! Transparent decompression, recognised by magic bytes (URLs and Content-Type lie or say
//! nothing): gzip and bzip2, each possibly of several members/streams, as `cat a.gz b.gz` and
//! parallel compressors (pigz, pbzip2) produce. Anything else passes through unchanged.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Cursor, Read};

use bytes::{Buf, Bytes};

/// How the downloaded bytes were compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Bzip2 => "bzip2",
        }
    }

    /// Recognises a stream by its first bytes (at least 4 unless the stream is shorter).
    pub fn detect(head: &[u8]) -> Self {
        match head {
            [0x1f, 0x8b, ..] => Self::Gzip,
            // "BZh" and a block size digit: the digit makes a raw image that happens to start
            // with "BZh" less likely to be taken for bzip2.
            [b'B', b'Z', b'h', b'1'..=b'9', ..] => Self::Bzip2,
            _ => Self::None,
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decompression failure, worded for the user.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    #[error("{0} stream ends early: the download was truncated")]
    Truncated(Compression),
    #[error("the {compression} data is corrupt: {detail}")]
    Corrupt {
        compression: Compression,
        detail: String,
    },
    /// The input side went away (the download failed or was cancelled); its own error says why.
    #[error("the download ended")]
    InputGone,
}

impl DecompressError {
    pub fn from_io(compression: Compression, e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::BrokenPipe => Self::InputGone,
            io::ErrorKind::UnexpectedEof => Self::Truncated(compression),
            _ => Self::Corrupt {
                compression,
                detail: e.to_string(),
            },
        }
    }
}

/// The chunks the async download sends, for a blocking thread: as chunks (passed on without a
/// copy when there is nothing to decompress) or as a `BufRead` for a decoder.
pub struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    /// Chunks received but not yet handed out: the peeked head, then the one being read.
    queued: VecDeque<Bytes>,
}

impl ChannelReader {
    pub fn new(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Self {
        Self {
            rx,
            queued: VecDeque::new(),
        }
    }

    /// Recognises the stream by its first bytes, which stay to be read.
    pub fn detect(&mut self) -> Compression {
        let mut head = Vec::with_capacity(4);
        let mut i = 0;
        while head.len() < 4 {
            if i == self.queued.len() {
                match self.rx.blocking_recv() {
                    Some(chunk) => self.queued.push_back(chunk),
                    None => break,
                }
            }
            let chunk = &self.queued[i];
            head.extend_from_slice(&chunk[..chunk.len().min(4 - head.len())]);
            i += 1;
        }
        Compression::detect(&head)
    }

    /// The next chunk, `None` at the end.
    pub fn next_chunk(&mut self) -> Option<Bytes> {
        // The sender closes the channel at the body's end and on failure alike; the pipeline
        // tells them apart by the download's result.
        self.queued.pop_front().or_else(|| self.rx.blocking_recv())
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.queued.front().is_some_and(Bytes::is_empty) {
            self.queued.pop_front();
        }
        if self.queued.is_empty() {
            match self.next_chunk() {
                Some(chunk) => self.queued.push_back(chunk),
                None => return Ok(&[]),
            }
        }
        Ok(self.queued.front().map(|c| &c[..]).unwrap_or_default())
    }

    fn consume(&mut self, n: usize) {
        if let Some(chunk) = self.queued.front_mut() {
            chunk.advance(n.min(chunk.len()));
        }
    }
}

/// A decoder for `compression` over `input`, which starts at the stream's first byte.
pub fn decoder_for<R: BufRead + Send + 'static>(
    compression: Compression,
    input: R,
) -> Box<dyn Read + Send> {
    match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
    }
}

/// Wraps `input` in the decoder its first bytes call for.
pub fn decoder<R: Read + Send + 'static>(
    mut input: R,
) -> io::Result<(Compression, Box<dyn Read + Send>)> {
    let mut head = Vec::with_capacity(4);
    (&mut input).take(4).read_to_end(&mut head)?;
    let compression = Compression::detect(&head);
    let input = Read::chain(Cursor::new(head), input);
    // The decoders want buffered input; 256 KiB keeps read calls few.
    let buffered = BufReader::with_capacity(256 << 10, input);
    Ok((compression, decoder_for(compression, buffered)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn bzip2(data: &[u8]) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode(input: Vec<u8>) -> (Compression, Result<Vec<u8>, DecompressError>) {
        let (c, mut r) = decoder(Cursor::new(input)).unwrap();
        let mut out = Vec::new();
        let res = r.read_to_end(&mut out).map(|_| out);
        (c, res.map_err(|e| DecompressError::from_io(c, e)))
    }

    fn sample() -> Vec<u8> {
        (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn detection() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(Compression::detect(b"BZh9"), Compression::Bzip2);
        assert_eq!(Compression::detect(b"BZhX"), Compression::None);
        assert_eq!(Compression::detect(b"QFI\xfb"), Compression::None);
        assert_eq!(Compression::detect(b""), Compression::None);
    }

    #[test]
    fn multi_member_round_trips() {
        let data = sample();
        let (half_a, half_b) = data.split_at(data.len() / 3);
        let mut gz = gzip(half_a);
        gz.extend(gzip(half_b));
        assert_eq!(decode(gz).map_ok(), (Compression::Gzip, Ok(data.clone())));
        let mut bz = bzip2(half_a);
        bz.extend(bzip2(half_b));
        assert_eq!(decode(bz).map_ok(), (Compression::Bzip2, Ok(data.clone())));
        let (c, out) = decode(data.clone());
        assert_eq!((c, out.unwrap()), (Compression::None, data));
    }

    #[test]
    fn channel_reader_detects_a_head_split_across_chunks() {
        let data = bzip2(&sample());
        for split in [1, 2, 3, 5, 4096] {
            let (tx, rx) = tokio::sync::mpsc::channel(1 << 16);
            for piece in data.chunks(split) {
                tx.try_send(Bytes::copy_from_slice(piece)).unwrap();
            }
            drop(tx);
            let mut input = ChannelReader::new(rx);
            assert_eq!(input.detect(), Compression::Bzip2, "{split}");
            let mut out = Vec::new();
            decoder_for(Compression::Bzip2, input)
                .read_to_end(&mut out)
                .unwrap();
            assert!(out == sample(), "{split}");
        }
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.try_send(Bytes::from_static(b"BZ")).unwrap();
        drop(tx);
        let mut input = ChannelReader::new(rx);
        assert_eq!(input.detect(), Compression::None);
        assert_eq!(input.next_chunk().as_deref(), Some(&b"BZ"[..]));
        assert_eq!(input.next_chunk(), None);
    }

    #[test]
    fn tiny_inputs_pass_through() {
        for input in [&b""[..], b"a", b"\x1f", b"BZh"] {
            let (c, out) = decode(input.to_vec());
            assert_eq!((c, out.unwrap()), (Compression::None, input.to_vec()));
        }
    }

    #[test]
    fn truncation_is_reported() {
        let data = sample();
        for (c, mut compressed) in [
            (Compression::Gzip, gzip(&data)),
            (Compression::Bzip2, bzip2(&data)),
        ] {
            compressed.truncate(compressed.len() / 2);
            let (got, res) = decode(compressed);
            assert_eq!(got, c);
            let msg = res.unwrap_err().to_string();
            assert_eq!(
                msg,
                format!("{c} stream ends early: the download was truncated")
            );
        }
    }

    #[test]
    fn corruption_is_reported() {
        let mut gz = gzip(&sample());
        let mid = gz.len() / 2;
        gz[mid..mid + 64].fill(0xa5);
        let (_, res) = decode(gz);
        assert!(res.is_err());
    }

    /// Compares results where the error type is not `PartialEq`.
    trait MapOk {
        fn map_ok(self) -> (Compression, Result<Vec<u8>, String>);
    }
    impl MapOk for (Compression, Result<Vec<u8>, DecompressError>) {
        fn map_ok(self) -> (Compression, Result<Vec<u8>, String>) {
            (self.0, self.1.map_err(|e| e.to_string()))
        }
    }
}
