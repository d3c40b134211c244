#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A small limit too, so the size-limit paths are exercised.
    let _ = tidepool_formats::inspect(data, u64::MAX);
    let _ = tidepool_formats::inspect(data, 1 << 20);
});
