//! Bench helper: the in-process ceiling of an import on this machine. The same decompression as
//! the importer (its own `decompress::decoder`: flate2 with zlib-rs, bzip2), SHA-256 on a second
//! thread, 1 MiB chunks written to a file on the same disk and a final fsync; no network, no
//! inspection, no blob store.
//!
//! ```text
//! import_ceiling INPUT OUTPUT
//! ```
//!
//! Prints `bytes=<decompressed bytes> secs=<seconds> mbps=<MB/s of decompressed data> sha256=<hex>`.

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::time::Instant;

const CHUNK: usize = 1 << 20;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: import_ceiling INPUT OUTPUT");
        std::process::exit(2);
    };
    let started = Instant::now();
    let (_, mut reader) = tidepool_import::decompress::decoder(std::fs::File::open(input)?)?;
    let mut out = std::fs::File::create(output)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<bytes::Bytes>(4);
    let hasher = std::thread::spawn(move || {
        let mut sha = Sha256::new();
        for chunk in rx {
            sha.update(&chunk);
        }
        sha.finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    });
    let mut total = 0u64;
    loop {
        let mut buf = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            match reader.read(&mut buf[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        if filled == 0 {
            break;
        }
        buf.truncate(filled);
        out.write_all(&buf)?;
        total += filled as u64;
        tx.send(buf.into()).expect("hash thread alive");
    }
    drop(tx);
    out.sync_all()?;
    let sha = hasher.join().expect("hash thread");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "bytes={total} secs={secs:.3} mbps={:.1} sha256={sha}",
        total as f64 / secs / 1e6
    );
    Ok(())
}
