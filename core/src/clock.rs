//! The day prices are chosen by.
//!
//! In production it is the UTC date of the request. A local test stack may pin it with
//! `TEST_PRICE_DATE=YYYY-MM-DD` (test-only), so that tests do not break when a model they use
//! retires or a dated price takes effect. Pinning only picks which dated rows of the price tables
//! apply: a model with no price on that day is refused as on any other day, so the setting can
//! never make a model free. The request clock itself (ledger times, rate-limit windows, webhook
//! signature ages, analytics days) is never pinned.
//!
//! The setting is honoured only when the store is on this machine (`UPSTASH_REDIS_REST_URL` on
//! a loopback address: the local stack). Anywhere else it is a configuration error, so a deployed
//! gateway with it set answers 503 everywhere instead of silently pricing by another day.

use crate::pricing::utc_date;

/// The name of the test-only setting.
pub const TEST_PRICE_DATE: &str = "TEST_PRICE_DATE";

/// Checks `TEST_PRICE_DATE` (`value`) against the store's URL: `None` when unset, the date when
/// set on the local stack, an error (for `misconfigured`) otherwise.
pub fn pinned_price_date(value: Option<&str>, upstash_url: Option<&str>) -> Result<Option<String>, String> {
    let Some(date) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if !is_date(date) {
        return Err(format!("`{date}` is not a date YYYY-MM-DD"));
    }
    match upstash_url {
        Some(u) if is_loopback_url(u) => Ok(Some(date.to_string())),
        _ => Err("is a test-only setting, honoured only on the local stack (UPSTASH_REDIS_REST_URL on 127.0.0.1, ::1 or localhost): unset it".to_string()),
    }
}

/// The day prices are chosen by: the pinned day if any, else the UTC date of `now_ms`.
pub fn price_day(pinned: Option<&str>, now_ms: u64) -> String {
    pinned.map_or_else(|| utc_date(now_ms), str::to_string)
}

/// A `YYYY-MM-DD` day that exists (2026-02-30 does not).
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) || !digits(5..7) || !digits(8..10) {
        return false;
    }
    let (y, m, d): (u64, u64, u64) = match (s[0..4].parse(), s[5..7].parse(), s[8..10].parse()) {
        (Ok(y), Ok(m), Ok(d)) => (y, m, d),
        _ => return false,
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    y >= 1970 && (1..=days).contains(&d)
}

/// `http(s)://HOST[:port][/…]` with HOST 127.x.x.x, `localhost` or `[::1]`.
pub fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    let host = if authority.starts_with('[') {
        authority.split(']').next().map(|h| format!("{h}]")).unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or("").to_string()
    };
    let host = host.to_ascii_lowercase();
    if host == "localhost" || host == "[::1]" {
        return true;
    }
    let octets: Vec<&str> = host.split('.').collect();
    octets.len() == 4 && octets[0] == "127" && octets.iter().all(|o| !o.is_empty() && o.len() <= 3 && o.bytes().all(|c| c.is_ascii_digit()) && o.parse::<u16>().is_ok_and(|n| n <= 255))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_means_the_calendar() {
        assert_eq!(pinned_price_date(None, Some("https://eu1.upstash.io")), Ok(None));
        assert_eq!(pinned_price_date(Some("  "), None), Ok(None));
        assert_eq!(price_day(None, 1_795_392_000_000), "2026-11-23");
    }

    #[test]
    fn honoured_only_on_the_local_stack() {
        for local in ["http://127.0.0.1:8079", "http://localhost:1", "http://[::1]:80/", "https://127.1.2.3"] {
            assert_eq!(pinned_price_date(Some("2026-11-16"), Some(local)), Ok(Some("2026-11-16".into())), "{local}");
        }
        for remote in [
            "https://eu1-x.upstash.io",
            "http://127.0.0.1.example.com",
            "http://user@127.0.0.1.evil",
            "http://127.0.0.1@evil.example",
            "http://10.0.0.1:8079",
            "127.0.0.1:8079",
            "http://127.0.0.256",
        ] {
            let e = pinned_price_date(Some("2026-11-16"), Some(remote)).unwrap_err();
            assert!(e.contains("test-only"), "{remote}: {e}");
        }
        assert!(pinned_price_date(Some("2026-11-16"), None).is_err(), "no store URL is not local");
    }

    #[test]
    fn the_date_must_exist() {
        for bad in ["2026-02-30", "2026-13-01", "26-11-16", "2026-11-16T00:00:00Z", "tomorrow", "1969-12-31", "2026-1-016"] {
            assert!(pinned_price_date(Some(bad), Some("http://127.0.0.1:1")).unwrap_err().contains("not a date"), "{bad}");
        }
        assert!(is_date("2028-02-29") && !is_date("2027-02-29") && !is_date("2100-02-29") && is_date("2000-02-29"));
    }

    #[test]
    fn a_pinned_day_only_picks_rows_it_never_makes_a_retired_model_free() {
        let day = price_day(Some("2026-11-16"), 0);
        assert_eq!(day, "2026-11-16");
        // Sold on the pinned day, with its dated price; refused after its last day.
        assert!(crate::media_prices::image_model("gpt-image-1.5", &day).is_ok());
        assert!(crate::media_prices::image_model("gpt-image-1.5", "2026-12-01").is_err());
        // A model retired before the pinned day stays refused.
        assert!(crate::pricing::lookup(crate::provider::Provider::Anthropic, "claude-3-5-sonnet-20241022", &day).is_err());
        assert!(crate::media_prices::image_model("dall-e-3", &day).is_err());
    }
}
