//! vmdk (work in progress).
use crate::{Parsed, Problem, Refusal};

pub(crate) fn parse(_prefix: &[u8], _limit: u64) -> Result<Parsed, Problem> {
    Err(Problem::Refuse(Refusal::new(
        "vmdk images are not yet supported",
    )))
}

pub(crate) fn check_footer(_tail: &[u8], _total: u64, _capacity: u64) -> Result<(), Refusal> {
    Ok(())
}
