//! The command line's integration tests, in one binary: the built `tidepool` binary run as a
//! person or an operator runs it, against servers started by the tests.

mod connections;
mod crash;
mod images;
mod logs;
mod operator;
mod replicas;
mod serve;
mod support;
