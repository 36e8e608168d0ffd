//! API keys (`sk-broker-<64 hex>`, ids `key_<16 hex>`): hashing, parsing, ids. Keys are stored only as SHA-256 hashes; the plaintext exists
//! once, in the answer that creates (or rotates) it. Randomness comes from the caller (the worker
//! uses `getrandom`), so this module stays pure.

use sha2::{Digest, Sha256};

pub const KEY_PREFIX: &str = "sk-broker-";

pub fn hash_key(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

/// The key from `Authorization: Bearer <key>` (or `x-api-key`, as the Anthropic SDK sends it).
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let v = authorization?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let key = rest.trim();
    (!key.is_empty()).then_some(key)
}

/// Constant-time equality for secrets (admin secret): time depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Compare digests so the length of the secret does not leak either.
    let da = Sha256::digest(a);
    let db = Sha256::digest(b);
    da.iter().zip(db.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Key ids are checked before they reach Redis key names.
/// The page of `POST /admin/import-keys`: a Redis SCAN cursor (digits, as a string or a
/// non-negative integer; default "0") and a page size (1..=1000, default 200). Anything else is
/// the client's mistake, told as such: Redis would refuse it and the worker would answer 503.
pub fn import_page(cursor: Option<&serde_json::Value>, count: Option<&serde_json::Value>) -> Result<(String, u64), String> {
    use serde_json::Value;
    let cursor = match cursor {
        None | Some(Value::Null) => "0".to_string(),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u64>().is_ok() => s.clone(),
        Some(Value::Number(n)) if n.is_u64() => n.to_string(),
        Some(_) => return Err("`cursor` must be the `next_cursor` of the previous page (digits), or absent".into()),
    };
    let count = match count {
        None | Some(Value::Null) => 200,
        Some(c) => c.as_u64().filter(|n| (1..=1000).contains(n)).ok_or("`count` must be an integer from 1 to 1000")?,
    };
    Ok((cursor, count))
}

pub fn is_key_id(s: &str) -> bool {
    s.len() == 20 && s.starts_with("key_") && s[4..].chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_hashed() {
        assert_eq!(hash_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(is_key_id("key_0123456789abcdef"));
        assert!(!is_key_id(""));
        assert!(!is_key_id("key_../../x"));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret-longer"));
    }
}

/// Standard base64 (for HTTP Basic auth towards PayPal).
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod base64_tests {
    #[test]
    fn rfc4648_vectors() {
        for (i, o) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")] {
            assert_eq!(super::base64(i.as_bytes()), o);
        }
        assert_eq!(super::base64(b"AZexampleClientId:EKexampleSecret"), "QVpleGFtcGxlQ2xpZW50SWQ6RUtleGFtcGxlU2VjcmV0");
    }

}

#[cfg(test)]
mod import_page_tests {
    use super::import_page;

    // Fuzz finding (schemathesis): a negative count and a cursor of control characters reached
    // Redis' SCAN, which refused them, and the client saw a 503.
    #[test]
    fn import_pages_outside_what_scan_takes_are_refused() {
        use serde_json::json;
        assert_eq!(import_page(None, None), Ok(("0".into(), 200)));
        assert_eq!(import_page(Some(&json!("17")), Some(&json!(5))), Ok(("17".into(), 5)));
        assert_eq!(import_page(Some(&json!(17)), None), Ok(("17".into(), 200)));
        for bad in [json!("\u{16}x"), json!(""), json!("-1"), json!("99999999999999999999999"), json!(-3), json!(1.5), json!({})] {
            assert!(import_page(Some(&bad), None).is_err(), "cursor {bad}");
        }
        for bad in [json!(-93311), json!(0), json!(1001), json!("5"), json!(2.5)] {
            assert!(import_page(None, Some(&bad)).is_err(), "count {bad}");
        }
    }
}
