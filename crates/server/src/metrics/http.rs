//! The request series, resolved once per route: counting a request is one lookup by its route
//! template and a few atomic additions. Through the label API it was three hashes of every
//! label and three lock round trips per request, measured as a tenth of what the request log
//! and metrics together cost.

use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

/// The `method` label's values: unknown methods share `other`, so that no client can add series.
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
];
const OTHER: usize = METHODS.len() - 1;

/// The index in [`METHODS`] of a request's method (`other` for any it does not list).
pub fn method_index(method: &str) -> usize {
    METHODS[..OTHER]
        .iter()
        .position(|known| *known == method)
        .unwrap_or(OTHER)
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn class_index(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

pub(super) struct HttpSeries {
    requests: IntCounterVec,
    duration: HistogramVec,
    bytes: IntCounterVec,
    routes: RwLock<HashMap<Box<str>, Arc<RouteSeries>>>,
}

/// One route's series. A method and status class gets its series when first seen, so that the
/// exposition lists only what happened.
struct RouteSeries {
    requests: [[OnceLock<IntCounter>; CLASSES.len()]; METHODS.len()],
    duration: [OnceLock<Histogram>; METHODS.len()],
    bytes: IntCounter,
}

impl HttpSeries {
    pub(super) fn new(
        requests: IntCounterVec,
        duration: HistogramVec,
        bytes: IntCounterVec,
    ) -> Self {
        HttpSeries {
            requests,
            duration,
            bytes,
            routes: RwLock::default(),
        }
    }

    pub(super) fn record(
        &self,
        route: &str,
        method: usize,
        status: u16,
        elapsed: Duration,
        body_bytes: u64,
    ) {
        let series = self.route(route);
        let class = class_index(status);
        let method = method.min(OTHER);
        series.requests[method][class]
            .get_or_init(|| {
                self.requests
                    .with_label_values(&[route, METHODS[method], CLASSES[class]])
            })
            .inc();
        series.duration[method]
            .get_or_init(|| self.duration.with_label_values(&[route, METHODS[method]]))
            .observe(elapsed.as_secs_f64());
        series.bytes.inc_by(body_bytes);
    }

    fn route(&self, route: &str) -> Arc<RouteSeries> {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        if let Some(series) = routes.get(route) {
            return series.clone();
        }
        drop(routes);
        // Routes are the router's templates, a fixed handful: this runs once for each.
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        routes
            .entry(route.into())
            .or_insert_with(|| {
                Arc::new(RouteSeries {
                    requests: Default::default(),
                    duration: Default::default(),
                    bytes: self.bytes.with_label_values(&[route]),
                })
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_have_one_label_each_and_the_rest_share_other() {
        for (i, name) in METHODS[..OTHER].iter().enumerate() {
            assert_eq!(method_index(name), i);
        }
        for unknown in ["BREW", "get", "other", ""] {
            assert_eq!(METHODS[method_index(unknown)], "other", "{unknown:?}");
        }
    }
}
