//! The byte ranges clients send the registry: `Range: bytes=…` on a blob GET (RFC 9110
//! §14.1.2, one range) and `Content-Range: START-END` on a chunked upload's PATCH (the
//! distribution spec's form, inclusive, `bytes ` allowed in front as some clients write
//! it). Numbers are plain decimal digits: no sign, no spaces inside, nothing after.
//! Fuzzed by `registry/tests/prop.rs` (tests/fuzz.sh `registry`).

/// A decimal number of digits only (`u64::from_str` also takes a leading `+`).
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses `bytes=a-b`, `bytes=a-` or `bytes=-n` against a blob of `len` bytes: the first
/// and last byte served; `None` if malformed or unsatisfiable.
pub fn byte_range(value: &str, len: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let last = len.checked_sub(1)?;
    let (start, end) = if a.is_empty() {
        let n = digits(b)?;
        if n == 0 {
            return None;
        }
        (len - n.min(len), last)
    } else {
        let start = digits(a)?;
        let end = if b.is_empty() {
            last
        } else {
            digits(b)?.min(last)
        };
        (start, end)
    };
    (start <= end).then_some((start, end))
}

/// Parses a chunk's `Content-Range: START-END` (or `bytes START-END`): its first and last
/// byte, `None` if malformed or backwards.
pub fn content_range(value: &str) -> Option<(u64, u64)> {
    let value = value.trim();
    let spec = value.strip_prefix("bytes ").unwrap_or(value);
    let (a, b) = spec.split_once('-')?;
    let (start, end) = (digits(a)?, digits(b)?);
    (start <= end).then_some((start, end))
}

/// Whether a PATCH with Content-Range `value` (and `content_length`, when the request says it)
/// continues an upload that holds `size` bytes: it starts at `size`, and its length, when
/// both are known, agrees with the range. `Err` says why not, for the 416 answer.
pub fn chunk_continues(value: &str, size: u64, content_length: Option<u64>) -> Result<(), String> {
    let Some((start, end)) = content_range(value) else {
        return Err(format!(
            "Content-Range {value:?} is not START-END (decimal, inclusive)"
        ));
    };
    if start != size {
        return Err(format!(
            "the chunk starts at {start} but the upload has {size} bytes; send chunks in order"
        ));
    }
    if let Some(n) = content_length {
        // u128: `0-18446744073709551615` is 2^64 bytes, one more than a u64 holds.
        let span = u128::from(end - start) + 1;
        if u128::from(n) != span {
            return Err(format!(
                "Content-Range {start}-{end} is {span} bytes but Content-Length is {n}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges() {
        assert_eq!(byte_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(byte_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(byte_range("bytes=-1000", 100), Some((0, 99)));
        assert_eq!(byte_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(byte_range("bytes=100-", 100), None);
        assert_eq!(byte_range("bytes=0-1,3-4", 100), None);
        assert_eq!(byte_range("bytes=0-0", 0), None);
        assert_eq!(byte_range("bytes=-0", 100), None);
        assert_eq!(byte_range("bytes=+1-5", 100), None);
        assert_eq!(byte_range("bytes=5-+9", 100), None);
        assert_eq!(byte_range("bytes=9-5", 100), None);
    }

    #[test]
    fn content_ranges() {
        assert_eq!(content_range("0-9"), Some((0, 9)));
        assert_eq!(content_range("bytes 10-19"), Some((10, 19)));
        assert_eq!(content_range(" 5-5 "), Some((5, 5)));
        for bad in [
            "",
            "5",
            "5-",
            "-5",
            "+5-9",
            "5-+9",
            "9-5",
            "bytes bytes 0-1",
            "0-1/2",
            "a-b",
        ] {
            assert_eq!(content_range(bad), None, "{bad:?}");
        }
        assert!(chunk_continues("10-19", 10, Some(10)).is_ok());
        assert!(chunk_continues("10-19", 10, None).is_ok());
        assert!(chunk_continues("10-19", 10, Some(11)).is_err());
        assert!(chunk_continues("11-19", 10, Some(9)).is_err());
        assert!(chunk_continues("0-18446744073709551615", 0, Some(5)).is_err());
    }
}
