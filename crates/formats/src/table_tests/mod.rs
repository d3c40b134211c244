//! Table tests over hand-built headers: a minimal valid image per format,
//! then one field changed per case.

mod builders;

mod chunking;
mod corpus;
mod foreign;
mod qcow2;
mod raw;
mod truncation;
mod vdi;
mod vhdx;
mod vmdk;
