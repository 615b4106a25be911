//! Signing of webhook deliveries, and the verification a receiver does.
//!
//! Each request carries `X-Tailor-Timestamp: <unix seconds>` and
//! `X-Tailor-Signature: v1=<hex>`, the HMAC-SHA256 (RFC 2104) under the
//! sink's secret of `<timestamp>.<body>` (the same construction as Stripe's
//! and Slack's request signing). A receiver recomputes it over the raw
//! body, compares in constant time, rejects timestamps more than
//! [`TOLERANCE_S`] away from its clock (replays of an old capture), and
//! drops payload ids it has already seen within that window (replays of a
//! fresh one). `docs/notifications.md` shows the procedure in Python and
//! with openssl.
//!
//! HMAC comes from aws-lc-rs, the crypto provider rustls already uses here:
//! one crypto library in the binary.

use aws_lc_rs::hmac;

/// Header with the unix time the signature was made at.
pub const TIMESTAMP_HEADER: &str = "X-Tailor-Timestamp";
/// Header with `v1=` and the hex HMAC-SHA256 of `<timestamp>.<body>`.
pub const SIGNATURE_HEADER: &str = "X-Tailor-Signature";
/// How far a receiver should accept a timestamp from its own clock.
pub const TOLERANCE_S: i64 = 300;

/// `v1=<hex>` for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, &signed_bytes(timestamp, body));
    format!("v1={}", hex(tag.as_ref()))
}

fn signed_bytes(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(body.len() + 21);
    data.extend_from_slice(timestamp.to_string().as_bytes());
    data.push(b'.');
    data.extend_from_slice(body);
    data
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Why a delivery was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the timestamp header is missing or not a number")]
    BadTimestamp,
    #[error("the timestamp is {0} s away from now: a replay, or a clock off by that much")]
    Stale(i64),
    #[error("the signature header is missing or not `v1=<hex>`")]
    BadSignature,
    #[error("the signature does not match the body: forged, altered, or another secret")]
    Mismatch,
}

/// The receiver's check, given the two headers as received, the raw body,
/// and its clock (`now`, unix seconds). Replays inside the tolerance are
/// caught by the payload id, which the caller remembers.
pub fn verify(
    secret: &[u8],
    timestamp_header: Option<&str>,
    signature_header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let timestamp: i64 = timestamp_header
        .and_then(|t| t.trim().parse().ok())
        .ok_or(VerifyError::BadTimestamp)?;
    let skew = now.saturating_sub(timestamp);
    if skew.abs() > TOLERANCE_S {
        return Err(VerifyError::Stale(skew));
    }
    let tag = signature_header
        .and_then(|s| s.trim().strip_prefix("v1="))
        .and_then(unhex)
        .ok_or(VerifyError::BadSignature)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    // Constant-time comparison inside aws-lc-rs.
    hmac::verify(&key, &signed_bytes(timestamp, body), &tag).map_err(|_| VerifyError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2: HMAC-SHA256 of "what do ya want for nothing?"
    /// under the key "Jefe".
    #[test]
    fn hmac_matches_rfc_4231() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        let tag = hmac::sign(&key, b"what do ya want for nothing?");
        assert_eq!(
            hex(tag.as_ref()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_signature_verifies_and_tampering_does_not() {
        let body = br#"{"id":"a"}"#;
        let sig = sign(b"s3cret", 1_700_000_000, body);
        assert!(sig.starts_with("v1=") && sig.len() == 3 + 64, "{sig}");
        let check = |secret: &[u8], ts: &str, sig: &str, body: &[u8], now: i64| {
            verify(secret, Some(ts), Some(sig), body, now)
        };
        assert_eq!(
            check(b"s3cret", "1700000000", &sig, body, 1_700_000_100),
            Ok(())
        );
        assert_eq!(
            check(b"other", "1700000000", &sig, body, 1_700_000_000),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check(
                b"s3cret",
                "1700000000",
                &sig,
                br#"{"id":"b"}"#,
                1_700_000_000
            ),
            Err(VerifyError::Mismatch)
        );
        // The timestamp is signed: moving it forward breaks the signature.
        assert_eq!(
            check(b"s3cret", "1700000600", &sig, body, 1_700_000_600),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            check(b"s3cret", "1700000000", &sig, body, 1_700_000_301),
            Err(VerifyError::Stale(301))
        );
        assert_eq!(
            check(b"s3cret", "soon", &sig, body, 0),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            check(b"s3cret", "1700000000", "sha256=00", body, 1_700_000_000),
            Err(VerifyError::BadSignature)
        );
    }
}
