//! Connections that idle, stall or outstay a shutdown: `tidepool serve` run under the soft
//! open-file limit most systems start processes with (1,024), against clients that connect and
//! send nothing or half a request.
//!
//! The limits are set through their `TIDEPOOL_…` environment twins, which a server without them
//! ignores, so that these tests can be run against an older binary to see them fail.

use crate::support::Server;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};
use tidepool_testkit::skip;

/// A request line and some headers, without the blank line that ends them.
const HALF_A_REQUEST: &[u8] = b"GET /v2/images HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: app";

/// The hard open-file limit of processes started from here, if it is a number.
fn hard_open_file_limit() -> Option<u64> {
    let out = Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Whether the server has closed `stream` (end of file or reset), waiting up to `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    stream
        .set_read_timeout(Some(within.max(Duration::from_millis(1))))
        .unwrap();
    let mut sink = Vec::new();
    match stream.read_to_end(&mut sink) {
        Ok(_) => true,
        Err(err) if err.kind() == ErrorKind::ConnectionReset => true,
        Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(err) => panic!("reading an idle connection: {err}"),
    }
}

#[test]
fn two_thousand_idle_connections_under_a_1024_file_limit_leave_the_api_answering_and_are_closed() {
    const TEST: &str =
        "connections::two_thousand_idle_connections_under_a_1024_file_limit_leave_the_api_answering_and_are_closed";
    const IDLE: usize = 2000;
    // With room for opening 2,000 connections while the rest of the suite runs beside this test
    // (3 s seen alone, 9.3 s beside the crash and replica tests on two cores).
    const HEADER_TIMEOUT: Duration = Duration::from_secs(20);
    if hard_open_file_limit().is_none_or(|hard| hard < 3 * IDLE as u64) {
        skip(
            TEST,
            "the hard open-file limit is too low for 2,000 connections on each side (raise it with `ulimit -Hn`)",
        );
        return;
    }
    // This process holds the client's end of every connection.
    tidepool_server::http::serve::raise_open_file_limit();

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[(
            "TIDEPOOL_HTTP_HEADER_READ_TIMEOUT_SECS",
            &HEADER_TIMEOUT.as_secs().to_string(),
        )],
    );
    // Half send nothing, half stop in the middle of their headers.
    let first_opened = Instant::now();
    let mut idle: Vec<TcpStream> = (0..IDLE)
        .map(|i| {
            let mut stream = TcpStream::connect_timeout(&server.addr, Duration::from_secs(2))
                .unwrap_or_else(|err| panic!("could open only {i} of {IDLE} connections: {err}"));
            if i % 2 == 1 {
                stream.write_all(HALF_A_REQUEST).unwrap();
            }
            stream
        })
        .collect();
    let last_opened = Instant::now();

    for _ in 0..5 {
        server.list_images();
    }
    // The answers came while every idle connection was still held.
    assert!(
        first_opened.elapsed() < HEADER_TIMEOUT,
        "opening the connections and asking took {:?}, longer than the header-read timeout; the test proves nothing on a machine this slow",
        first_opened.elapsed()
    );
    for stream in [&idle[0], &idle[1]] {
        stream.set_nonblocking(true).unwrap();
        let err = (&*stream).read(&mut [0; 1]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "still open");
        stream.set_nonblocking(false).unwrap();
    }

    let deadline = last_opened + HEADER_TIMEOUT + Duration::from_secs(3);
    for (i, stream) in idle.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            closed_within(stream, left),
            "idle connection {i} is still open 3 s after the header-read timeout"
        );
    }
    server.list_images();
}

/// Sends `GET /v2/images` on `stream` and reads the whole answer; returns its status code.
fn get_on(stream: &mut TcpStream, token: &str) -> u16 {
    write!(
        stream,
        "GET /v2/images HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut reader = BufReader::new(&*stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    assert!(reader.buffer().is_empty(), "one answer per request");
    status
}

#[test]
fn a_keep_alive_connection_outlives_the_header_timeout_and_is_closed_after_the_idle_timeout() {
    const IDLE_TIMEOUT: Duration = Duration::from_secs(3);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("TIDEPOOL_HTTP_HEADER_READ_TIMEOUT_SECS", "1"),
            (
                "TIDEPOOL_HTTP_IDLE_TIMEOUT_SECS",
                &IDLE_TIMEOUT.as_secs().to_string(),
            ),
        ],
    );
    let mut stream = TcpStream::connect(server.addr).unwrap();
    assert_eq!(get_on(&mut stream, &server.token), 200);
    // Idle for longer than a new connection may take to send its first request.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(get_on(&mut stream, &server.token), 200, "kept alive");
    let answered = Instant::now();
    assert!(
        closed_within(&mut stream, IDLE_TIMEOUT + Duration::from_secs(3)),
        "an idle keep-alive connection is closed after the idle timeout"
    );
    assert!(
        answered.elapsed() >= IDLE_TIMEOUT - Duration::from_millis(500),
        "closed after {:?}, before the idle timeout",
        answered.elapsed()
    );
}

#[test]
fn at_the_connection_bound_a_new_client_waits_until_a_connection_closes() {
    const BOUND: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("TIDEPOOL_HTTP_MAX_CONNECTIONS", &BOUND.to_string()),
            ("TIDEPOOL_HTTP_HEADER_READ_TIMEOUT_SECS", "60"),
        ],
    );
    let mut held: Vec<TcpStream> = (0..BOUND)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    // The kernel completes the handshake, but the server does not take the connection.
    let mut waiting = TcpStream::connect(server.addr).unwrap();
    write!(
        waiting,
        "GET /v2/images HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\r\n",
        server.token
    )
    .unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let err = waiting.read(&mut [0; 1]).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "no answer while {BOUND} connections are held: {err}"
    );
    held.pop();
    waiting
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut answer = [0; 12];
    waiting.read_exact(&mut answer).unwrap();
    assert_eq!(
        &answer, b"HTTP/1.1 200",
        "answered once a connection closed"
    );
}

#[test]
fn start_up_raises_the_soft_open_file_limit_to_the_hard_one_and_logs_both() {
    const TEST: &str =
        "connections::start_up_raises_the_soft_open_file_limit_to_the_hard_one_and_logs_both";
    let Some(hard) = hard_open_file_limit().filter(|&hard| hard > 1024) else {
        skip(
            TEST,
            "the hard open-file limit is not above 1,024, so there is nothing to raise",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let raised = format!("was=1024 now={hard}");
    let started = Instant::now();
    // The line comes before the address is printed, but the log is read by another thread.
    while !server
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|line| line.contains("raised the open-file limit") && line.contains(&raised))
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the start-up log says the open-file limit was raised ({raised}):\n{}",
            server.log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.list_images();
}

#[test]
fn sigterm_stops_within_the_shutdown_timeout_while_a_client_holds_a_half_sent_request() {
    const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(
        dir.path(),
        &[
            (
                "TIDEPOOL_SHUTDOWN_TIMEOUT_SECS",
                &SHUTDOWN_TIMEOUT.as_secs().to_string(),
            ),
            // Longer than the test, so that only the shutdown deadline can end the connection.
            ("TIDEPOOL_HTTP_HEADER_READ_TIMEOUT_SECS", "60"),
        ],
    );
    let mut stalled = TcpStream::connect(server.addr).unwrap();
    stalled.write_all(HALF_A_REQUEST).unwrap();
    // The server reads the half request before it is told to stop: a connection it has read
    // nothing from would simply be closed.
    std::thread::sleep(Duration::from_millis(500));
    server.list_images();

    let signalled = Instant::now();
    server.sigterm();
    let margin = Duration::from_secs(5);
    let status = loop {
        if let Some(status) = server.process.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < SHUTDOWN_TIMEOUT + margin,
            "still running {:?} after SIGTERM, with a shutdown timeout of {SHUTDOWN_TIMEOUT:?}; its log:\n{}",
            signalled.elapsed(),
            server.log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "a shutdown past its deadline still exits 0: {status:?}"
    );
    assert!(
        closed_within(&mut stalled, Duration::from_secs(1)),
        "the stalled connection was dropped"
    );
}
