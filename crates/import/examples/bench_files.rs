//! Bench helper: a minimal static file server for the import benchmarks, so that the source of
//! the bytes is never the bottleneck. One thread per connection; the body goes out with
//! `std::io::copy`, which Linux turns into `sendfile`.
//!
//! ```text
//! bench_files ADDR DIR
//! ```
//!
//! Answers `GET` and `HEAD` of files directly in DIR with their length, 404 otherwise.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;

fn serve(stream: TcpStream, dir: PathBuf) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        // Skip the headers.
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let name = path.trim_start_matches('/').split('?').next().unwrap_or("");
        let file = (!name.is_empty() && !name.contains('/') && !name.contains(".."))
            .then(|| std::fs::File::open(dir.join(name)).ok())
            .flatten();
        match file {
            Some(mut f) => {
                let len = f.metadata()?.len();
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\n\r\n"
                )?;
                if method == "GET" {
                    std::io::copy(&mut f, &mut out)?;
                }
            }
            None => write!(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?,
        }
        out.flush()?;
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, dir] = args.as_slice() else {
        eprintln!("usage: bench_files ADDR DIR");
        std::process::exit(2);
    };
    let listener = TcpListener::bind(addr)?;
    let dir = PathBuf::from(dir);
    for stream in listener.incoming() {
        let (stream, dir) = (stream?, dir.clone());
        std::thread::spawn(move || {
            let _ = serve(stream, dir);
        });
    }
    Ok(())
}
