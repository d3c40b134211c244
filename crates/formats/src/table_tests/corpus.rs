//! The fuzzers' corpus as regression inputs: every input that found new coverage in the
//! recorded runs (`fuzz/README.md`), minimised with `cargo fuzz cmin`, replayed with the fuzz
//! targets' own checks, so a change that panics on one or makes chunking change a verdict fails
//! here without a fuzzer.

use super::builders::LIMIT;
use crate::{inspect, Inspector};
use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn inspect_corpus_never_panics() {
    let corpus = inputs("inspect");
    assert!(corpus.len() > 50, "only {} inputs", corpus.len());
    for (_, data) in &corpus {
        let _ = inspect(data, LIMIT);
        let _ = inspect(data, 1 << 20);
    }
}

#[test]
fn inspector_chunks_corpus_keeps_its_verdicts() {
    let corpus = inputs("inspector_chunks");
    assert!(corpus.len() > 50, "only {} inputs", corpus.len());
    for (name, data) in &corpus {
        let Some((&first, rest)) = data.split_first() else {
            continue;
        };
        let chunk = usize::from(first) + 1;
        let limit = if first & 1 == 0 { u64::MAX } else { 1 << 20 };
        let mut ins = Inspector::new(limit);
        let mut streamed = None;
        for c in rest.chunks(chunk) {
            if let Err(r) = ins.push(c) {
                streamed = Some(Err(r));
                break;
            }
        }
        let streamed = streamed.unwrap_or_else(|| ins.finish());
        assert_eq!(streamed, inspect(rest, limit), "{name}");
    }
}
