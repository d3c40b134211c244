#![no_main]

use libfuzzer_sys::fuzz_target;
use tidepool_formats::{inspect, Inspector};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
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
    // Chunking must never change the verdict.
    assert_eq!(streamed, inspect(rest, limit));
});
