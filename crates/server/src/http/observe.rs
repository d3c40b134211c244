//! What every request leaves behind for the operator: a request id (the `X-Request-Id` header,
//! error bodies, and every log line of the request), one log line when its response has been
//! sent, and its count, latency and bytes in the metrics.
//!
//! The line and the figures are written when the response body is done (or dropped because the
//! client went away), not when the handler returns: a streamed body's time and size are then the
//! real ones. Labels and the logged route are the route template (`/v2/images/{image_id}`),
//! never the path, which carries ids.

use super::request_log::RequestLine;
use super::HttpState;
use crate::app::RequestId;
use crate::config::LogFormat;
use crate::metrics::{method_index, Metrics, METHODS};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as _, Frame, SizeHint};
use std::cell::OnceCell;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tracing::Instrument;

static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The route of requests that matched none: one label for every unknown path.
const UNMATCHED: &str = "unmatched";

tokio::task_local! {
    /// The request being served, for error bodies, the gate and the request's log line.
    pub static REQUEST: RequestScope;
}

/// What the layers of one request share through [`REQUEST`] (cheaper than request and response
/// extensions, whose maps each cost an allocation).
pub struct RequestScope {
    pub id: RequestId,
    /// The peer, or the address a trusted proxy forwarded for.
    pub client: Option<IpAddr>,
    /// The account the request was made as, set by the gate for the log line.
    pub account: OnceCell<Arc<str>>,
}

/// The client's address: the peer's, unless the peer is a trusted proxy, in which case the
/// rightmost address of `X-Forwarded-For` that is not itself a trusted proxy (addresses further
/// left were written by the client and prove nothing).
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer_ip = peer?;
    if !is_trusted(&peer_ip) {
        return Some(peer_ip);
    }
    let mut client = peer_ip;
    // Several headers count as one list, in order (RFC 9110, 5.3).
    let hops = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            // A hop that is not an address cannot be trusted further.
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
}

/// Probes and scrapes come every few seconds from machines, not people: their lines are at
/// debug level so that the request log stays about the API.
fn is_probe(route: &str) -> bool {
    matches!(route, "/healthz" | "/readyz" | "/metrics")
}

pub async fn observe(State(state): State<HttpState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let request_id = RequestId::new();
    // A clone of the router's own template (a reference count), not a copy of the string.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = method_index(request.method().as_str());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = client_address(peer, request.headers(), &state.trusted_proxies);

    // At debug level every log line of the request (the catalog's statements too) is inside a
    // span with its id. Not at info: creating and entering a span for every request cost more
    // than the request's own log line; the lines an operator reads at info (this one, errors,
    // the import queued) name the request id themselves.
    let span = tracing::debug_span!("request", request_id = %request_id);
    let scope = RequestScope {
        id: request_id,
        client,
        account: OnceCell::new(),
    };
    let mut served = std::pin::pin!(REQUEST.scope(scope, next.run(request).instrument(span)));
    let mut response = served.as_mut().await;
    let account = served
        .as_mut()
        .take_value()
        .and_then(|scope| scope.account.into_inner());
    let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
    if let Ok(id) = HeaderValue::from_str(request_id.encode(&mut text)) {
        response.headers_mut().insert(REQUEST_ID_HEADER.clone(), id);
    }
    let record = RequestRecord {
        start,
        request_id,
        method,
        route,
        status: response.status().as_u16(),
        account,
        client,
        metrics: state.app.metrics().clone(),
        log_format: state.log_format,
    };
    response.map(|body| {
        Body::new(LoggedBody {
            inner: body,
            sent: 0,
            complete: false,
            record: Some(record),
        })
    })
}

/// What the request's log line and metrics say, once its body is done.
struct RequestRecord {
    start: Instant,
    request_id: RequestId,
    /// An index in `metrics::METHODS`.
    method: usize,
    route: Option<MatchedPath>,
    status: u16,
    account: Option<Arc<str>>,
    client: Option<IpAddr>,
    metrics: Arc<Metrics>,
    log_format: LogFormat,
}

impl RequestRecord {
    fn finish(self, sent: u64, complete: bool) {
        let elapsed = self.start.elapsed();
        let route = self.route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
        self.metrics
            .http_request(route, self.method, self.status, elapsed, sent);
        let mut id = [0; uuid::fmt::Hyphenated::LENGTH];
        RequestLine {
            request_id: self.request_id.encode(&mut id),
            method: METHODS[self.method],
            route,
            status: self.status,
            elapsed,
            bytes: sent,
            account: self.account.as_deref().unwrap_or("-"),
            client: self.client,
            complete,
        }
        .emit(self.log_format, is_probe(route));
    }
}

/// The response body, counted as it is sent; the request is recorded when it is dropped.
struct LoggedBody {
    inner: Body,
    sent: u64,
    /// Whether the body ended rather than being dropped halfway (the client went away).
    complete: bool,
    record: Option<RequestRecord>,
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.sent += data.len() as u64;
                }
                // hyper stops polling a body that says it has ended.
                if self.inner.is_end_stream() {
                    self.complete = true;
                }
            }
            Poll::Ready(None) => self.complete = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        // An empty body (204, HEAD) is never polled: it is complete all the same.
        let complete = self.complete || self.inner.is_end_stream();
        if let Some(record) = self.record.take() {
            record.finish(self.sent, complete);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append(&X_FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let spoofed = headers(&["203.0.113.9"]);
        assert_eq!(
            client_address(Some(ip("198.51.100.7")), &spoofed, &trusted),
            Some(ip("198.51.100.7")),
            "an untrusted peer's X-Forwarded-For is ignored"
        );
        assert_eq!(
            client_address(Some(ip("10.1.2.3")), &spoofed, &trusted),
            Some(ip("203.0.113.9"))
        );
        // The client wrote the leftmost entry itself; the first untrusted hop from the right is
        // the one the proxies saw.
        let chain = headers(&["1.1.1.1, 198.51.100.7", "10.9.9.9"]);
        assert_eq!(
            client_address(Some(ip("10.1.2.3")), &chain, &trusted),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            client_address(Some(ip("10.1.2.3")), &headers(&["garbage"]), &trusted),
            Some(ip("10.1.2.3")),
            "an unparsable hop stops the walk at the proxy"
        );
        assert_eq!(
            client_address(Some(ip("10.1.2.3")), &HeaderMap::new(), &[]),
            Some(ip("10.1.2.3")),
            "with no trusted proxy the peer is the client"
        );
    }
}
