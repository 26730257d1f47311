#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    outcap_fuzz::ansi_check::check(data);
});
