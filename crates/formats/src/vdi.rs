//! vdi (work in progress).
use crate::{Parsed, Problem, Refusal};

pub(crate) fn parse(_prefix: &[u8], _limit: u64) -> Result<Parsed, Problem> {
    Err(Problem::Refuse(Refusal::new(
        "vdi images are not yet supported",
    )))
}
