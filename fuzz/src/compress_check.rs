//! The `compress` fuzz target's check: `gunzip` and `gunzip_exact_into` on
//! any bytes, and the gzip round trip.
//!
//! Input layout: the first byte selects the mode. When it is even, the rest
//! is gzip data to decode. When it is odd, the rest is plain data that is
//! compressed at level `byte >> 1` (0–127, so levels above `MAX_LEVEL` are
//! covered too) and decompressed again.

use outcap::compress::{gunzip, gunzip_exact_into, gzip, trailer_size, MAX_LEVEL};

/// Largest trailer size that the check allocates for `gunzip_exact_into`.
/// A corrupt trailer can claim up to 4 GiB, which would only slow the search.
const MAX_EXACT_SIZE: usize = 1 << 22;

/// Runs the compression checks on one fuzzer input. Panics on a mismatch.
pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        check_decode(rest);
    } else {
        check_round_trip(rest, u32::from(mode >> 1));
    }
}

/// Checks that `gunzip` and `gunzip_exact_into` agree on `data`.
pub fn check_decode(data: &[u8]) {
    let whole = gunzip(data);
    if let Err(error) = &whole {
        assert!(
            error.to_string().starts_with("invalid gzip data"),
            "gunzip error message: {error}"
        );
    }

    let Some(size) = trailer_size(data) else {
        return;
    };
    if size > MAX_EXACT_SIZE {
        return;
    }
    let mut out = vec![0u8; size];
    let exact = gunzip_exact_into(data, &mut out);

    match (&whole, &exact) {
        (Ok(plain), Ok(true)) => {
            assert!(
                out == *plain,
                "gunzip_exact_into output differs from gunzip"
            );
        }
        (Ok(plain), Ok(false)) => assert_ne!(
            plain.len(),
            size,
            "gunzip_exact_into returned false for data of exactly the trailer size"
        ),
        (Ok(plain), Err(error)) => panic!(
            "gunzip decoded {} bytes, but gunzip_exact_into failed: {error}",
            plain.len()
        ),
        (Err(error), Ok(true)) => {
            panic!("gunzip_exact_into accepted data that gunzip rejects: {error}")
        }
        (Err(_), Ok(false) | Err(_)) => {}
    }
}

/// Checks that `plain` compressed at `level` decompresses to itself, as one
/// gzip member whose trailer records its size.
pub fn check_round_trip(plain: &[u8], level: u32) {
    let compressed = gzip(plain, level);
    assert_eq!(&compressed[..2], b"\x1f\x8b", "gzip magic bytes");
    if level > MAX_LEVEL {
        assert!(
            compressed == gzip(plain, MAX_LEVEL),
            "level {level} compresses differently from MAX_LEVEL"
        );
    }

    let decoded = gunzip(&compressed).expect("gunzip reads what gzip wrote");
    assert!(
        decoded == plain,
        "round trip at level {level} changed the data"
    );

    let size = plain.len() % (1 << 32);
    assert_eq!(trailer_size(&compressed), Some(size), "trailer size");
    let mut out = vec![0u8; size];
    let exact =
        gunzip_exact_into(&compressed, &mut out).expect("gunzip_exact_into reads what gzip wrote");
    assert!(exact, "gunzip_exact_into returned false for gzip output");
    assert!(out == plain, "gunzip_exact_into changed the data");
}
