//! Checked configuration. The worker hands over a lookup of raw `[vars]`/secret strings; this
//! module turns every setting into a validated value once per isolate and names the variable
//! when one is wrong (a 503 that says what to fix, never a silent default for a bad value).
//! Secrets are wrapped in [`Secret`], which never prints its value.

use crate::error::ApiError;
use crate::money::{CreditRate, Decimal};
use crate::provider::Provider;
use crate::ratelimit::{RateLimit, RateLimits, DEFAULT_RATE_LIMITS};
use crate::scripts::Retention;
use std::fmt;

/// A secret value (API key, token, signing secret). `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The value, for the one place that sends it (a header, an HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Every non-secret setting, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub rate: CreditRate,
    /// `USD_PER_CREDIT` as configured, for display.
    pub usd_per_credit: String,
    pub limits: RateLimits,
    /// The plan of keys created without one (and of keys the original guide's routes create).
    pub default_plan: String,
    /// Longest silence between a provider's body chunks (and the head's timeout of products
    /// without their own).
    pub upstream_timeout_ms: u64,
    /// Longest wait for the provider's response head, per product: a request sent and not
    /// answered in time is charged its hold (the provider may have done the work).
    pub head_timeouts: HeadTimeouts,
    /// Once the client has gone, how long a call may still read the provider before it is cut
    /// and settled with what is known (below the platform's ~30 s `waitUntil` allowance).
    pub client_gone_deadline_ms: u64,
    pub max_body_bytes: u64,
    pub max_webhook_bytes: u64,
    pub stripe_tolerance_secs: u64,
    /// PayPal webhook deliveries allowed per client address and window (each costs two calls
    /// to PayPal before its signature is known good).
    pub paypal_webhook_limit: RateLimit,
    /// Wrong admin secrets allowed per client address and window.
    pub admin_failure_limit: RateLimit,
    /// Holds still open after this long are charged by the sweeper.
    pub hold_sweep_after_secs: u64,
    /// Ledger entries kept per key (older ones fold into a carried total).
    pub ledger_keep: u64,
    /// Days the daily analytics rollups are kept.
    pub stats_keep_days: u64,
    /// A provider slower than this to answer is logged as a warning.
    pub slow_upstream_ms: u64,
    /// A call whose provider cost exceeds this (micro-USD) is logged as a warning.
    pub high_cost_usd_micro: u64,
    base_urls: Vec<(Provider, String)>,
    /// `ELEVENLABS_USD_PER_CREDIT`: the dollar value of one ElevenLabs credit on the operator's
    /// plan, pico-USD (what an ElevenLabs character costs the gateway).
    pub elevenlabs_pico_per_credit: u128,
    pub paypal_base_url: String,
    /// Browser origins allowed on the customer routes (empty: none).
    pub cors_origins: crate::cors::CorsOrigins,
    /// Stripe's API (Checkout, Billing Portal).
    pub stripe_base_url: String,
    /// Subscription plans sold through Checkout.
    pub subscription_plans: Vec<crate::stripe_billing::Plan>,
    /// The smallest and largest credit pack sold through Checkout.
    pub pack_bounds: crate::stripe_billing::PackBounds,
    /// `TEST_PRICE_DATE` (test-only, local stack only): the day prices are chosen by instead of
    /// the calendar's (see `clock`).
    pub price_date: Option<String>,
    /// RapidAPI subscriptions and the rate plans they get (`RAPIDAPI_PLANS`).
    pub rapidapi_plans: Vec<(String, String)>,
}

/// How long each product waits for the provider's response head, fitting its generation time:
/// chat streams its head at once; speech streams its audio as it is made; an image or a music
/// clip answers only when it is done (minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadTimeouts {
    pub chat_ms: u64,
    pub image_ms: u64,
    pub speech_ms: u64,
    pub music_ms: u64,
}

impl HeadTimeouts {
    /// The timeout of a product route (`chat`, `image`, `speech`, `music`).
    pub fn for_product(&self, product: &str) -> u64 {
        match product {
            "image" => self.image_ms,
            "speech" => self.speech_ms,
            "music" => self.music_ms,
            _ => self.chat_ms,
        }
    }
}

impl Settings {
    pub fn retention(&self) -> Retention {
        Retention { ledger_keep: self.ledger_keep, stats_ttl_secs: self.stats_keep_days * 86_400 }
    }

    pub fn base_url(&self, provider: Provider) -> &str {
        self.base_urls.iter().find(|(p, _)| *p == provider).map(|(_, u)| u.as_str()).unwrap_or(provider.default_base_url())
    }
}

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn var_or(get: Lookup, name: &str, default: &str) -> String {
    get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

/// A 503 naming the variable to fix.
pub fn misconfigured(name: &str, problem: impl fmt::Display) -> ApiError {
    ApiError::unavailable(format!("gateway misconfigured: {name}: {problem}")).public()
}

/// The shortest `ADMIN_SECRET` the admin routes accept: 32 characters (~190 bits from a random
/// base64 string), out of reach of guessing even without the per-network lockout.
pub const MIN_ADMIN_SECRET_LEN: usize = 32;

/// A configured admin secret too short to guard money is a 503 naming the setting: the admin
/// surface stays off until it is fixed, it is never served behind a weak secret.
pub fn check_admin_secret_strength(secret: &str) -> Result<(), ApiError> {
    if secret.chars().count() < MIN_ADMIN_SECRET_LEN {
        return Err(misconfigured(
            "ADMIN_SECRET",
            format!("is shorter than {MIN_ADMIN_SECRET_LEN} characters; set a long random one (e.g. `openssl rand -base64 32`)"),
        ));
    }
    Ok(())
}

/// `"0.50"` USD → 500000 micro-USD.
fn usd_micro(s: &str) -> Result<u64, String> {
    let d = Decimal::parse(s)?;
    u64::try_from(d.num.saturating_mul(1_000_000) / d.den).map_err(|_| format!("`{s}` is too large"))
}

fn url(get: Lookup, name: &str, default: &str) -> Result<String, ApiError> {
    let v = var_or(get, name, default);
    if !(v.starts_with("https://") || v.starts_with("http://")) {
        return Err(misconfigured(name, "must be an http(s) URL"));
    }
    Ok(v.trim_end_matches('/').to_string())
}

pub fn settings_from(get: Lookup) -> Result<Settings, ApiError> {
    let margin = Decimal::parse(&var_or(get, "MARGIN_MULTIPLIER", "1.8")).map_err(|e| misconfigured("MARGIN_MULTIPLIER", e))?;
    let usd_per_credit = var_or(get, "USD_PER_CREDIT", "0.01");
    let upc = Decimal::parse(&usd_per_credit).map_err(|e| misconfigured("USD_PER_CREDIT", e))?;
    let rate = CreditRate::new(margin, upc)?;
    let limits = RateLimits::parse(&var_or(get, "RATE_LIMITS", DEFAULT_RATE_LIMITS)).map_err(|e| misconfigured("RATE_LIMITS", e))?;
    let default_plan = var_or(get, "DEFAULT_PLAN", "free");
    if !limits.has_plan(&default_plan) {
        return Err(misconfigured("DEFAULT_PLAN", format!("plan `{default_plan}` has no limits in RATE_LIMITS")));
    }
    let num = |name: &str, default: &str| -> Result<u64, ApiError> { var_or(get, name, default).parse::<u64>().map_err(|e| misconfigured(name, e)) };
    let positive = |name: &str, default: &str| -> Result<u64, ApiError> {
        match num(name, default)? {
            0 => Err(misconfigured(name, "must be positive")),
            n => Ok(n),
        }
    };
    let admin_failure_limit = RateLimit::parse(&var_or(get, "ADMIN_FAILURE_LIMIT", "10/900")).map_err(|e| misconfigured("ADMIN_FAILURE_LIMIT", e))?;
    let subscription_plans = crate::stripe_billing::parse_plans(&var_or(get, "SUBSCRIPTION_PLANS", "")).map_err(|e| misconfigured("SUBSCRIPTION_PLANS", e))?;
    if let Some(p) = subscription_plans.iter().find(|p| !limits.has_plan(&p.rate_plan)) {
        return Err(misconfigured("SUBSCRIPTION_PLANS", format!("plan `{}` gives keys the rate plan `{}`, which RATE_LIMITS does not have", p.name, p.rate_plan)));
    }
    let cents = |name: &str, default: &str| crate::money::usd_cents(&var_or(get, name, default)).ok_or_else(|| misconfigured(name, "must be a USD amount"));
    let rapidapi_plans = crate::rapidapi::parse_plans(&var_or(get, "RAPIDAPI_PLANS", ""), &limits).map_err(|e| misconfigured("RAPIDAPI_PLANS", e))?;
    let pack_bounds = crate::stripe_billing::PackBounds { min_cents: cents("CHECKOUT_MIN_USD", "1")?, max_cents: cents("CHECKOUT_MAX_USD", "1000")? };
    let mut base_urls = Vec::new();
    for p in Provider::ALL {
        base_urls.push((p, url(get, p.base_url_var(), p.default_base_url())?));
    }
    let price_date = crate::clock::pinned_price_date(get(crate::clock::TEST_PRICE_DATE).as_deref(), get("UPSTASH_REDIS_REST_URL").as_deref())
        .map_err(|e| misconfigured(crate::clock::TEST_PRICE_DATE, e))?;
    Ok(Settings {
        price_date,
        rate,
        usd_per_credit,
        limits,
        default_plan,
        upstream_timeout_ms: positive("UPSTREAM_TIMEOUT_MS", "120000")?,
        // Images: OpenAI's SDKs wait 10 minutes, and gpt-image-2 calls have taken minutes
        // (~200 s, docs.apiyi.com 2026-04-29, advising 360–600 s). Music: Stable Audio renders
        // up to 190 s of audio in one synchronous call. Speech: the audio streams as it is made.
        head_timeouts: HeadTimeouts {
            chat_ms: positive("HEAD_TIMEOUT_CHAT_MS", "600000")?,
            image_ms: positive("HEAD_TIMEOUT_IMAGE_MS", "600000")?,
            speech_ms: positive("HEAD_TIMEOUT_SPEECH_MS", "60000")?,
            music_ms: positive("HEAD_TIMEOUT_MUSIC_MS", "300000")?,
        },
        client_gone_deadline_ms: positive("CLIENT_GONE_DEADLINE_MS", "20000")?,
        max_body_bytes: positive("MAX_BODY_BYTES", "1048576")?,
        max_webhook_bytes: positive("MAX_WEBHOOK_BYTES", "262144")?,
        stripe_tolerance_secs: positive("STRIPE_TOLERANCE_SECS", "300")?,
        admin_failure_limit,
        paypal_webhook_limit: RateLimit::parse(&var_or(get, "PAYPAL_WEBHOOK_LIMIT", "60/60")).map_err(|e| misconfigured("PAYPAL_WEBHOOK_LIMIT", e))?,
        hold_sweep_after_secs: positive("HOLD_SWEEP_AFTER_SECS", "7200")?,
        ledger_keep: positive("LEDGER_KEEP", "10000")?,
        stats_keep_days: positive("STATS_KEEP_DAYS", "400")?,
        slow_upstream_ms: positive("SLOW_UPSTREAM_MS", "1000")?,
        high_cost_usd_micro: usd_micro(&var_or(get, "HIGH_COST_USD", "0.50")).map_err(|e| misconfigured("HIGH_COST_USD", e))?,
        base_urls,
        elevenlabs_pico_per_credit: crate::media_prices::usd_to_pico(&var_or(get, "ELEVENLABS_USD_PER_CREDIT", crate::media_prices::ELEVENLABS_DEFAULT_USD_PER_CREDIT))
            .map_err(|e| misconfigured("ELEVENLABS_USD_PER_CREDIT", e))?,
        paypal_base_url: url(get, "PAYPAL_BASE_URL", "https://api-m.paypal.com")?,
        cors_origins: crate::cors::CorsOrigins::parse(&var_or(get, "CORS_ORIGINS", "")).map_err(|e| misconfigured("CORS_ORIGINS", e))?,
        stripe_base_url: url(get, "STRIPE_BASE_URL", "https://api.stripe.com")?,
        subscription_plans,
        pack_bounds,
        rapidapi_plans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_secrets_shorter_than_32_characters_turn_the_admin_surface_off() {
        let short = "a".repeat(31);
        let err = check_admin_secret_strength(&short).err().map(|e| (e.status(), e.message));
        assert_eq!(err.as_ref().map(|(s, _)| *s), Some(503));
        assert!(err.is_some_and(|(_, m)| m.contains("ADMIN_SECRET")));
        assert!(check_admin_secret_strength(&"a".repeat(32)).is_ok());
    }


    #[test]
    fn settings_name_the_bad_variable() {
        let only = |name: &'static str, value: &'static str| move |k: &str| (k == name).then(|| value.to_string());
        for (name, value) in [
            ("MARGIN_MULTIPLIER", "lots"),
            ("HOLD_SWEEP_AFTER_SECS", "soon"),
            ("ADMIN_FAILURE_LIMIT", "ten"),
            ("PAYPAL_WEBHOOK_LIMIT", "60"),
            ("DEFAULT_PLAN", "gold"),
            ("LEDGER_KEEP", "0"),
            ("OPENAI_BASE_URL", "api.openai.com"),
            ("SUBSCRIPTION_PLANS", "pro-monthly:price_1:2000:gold"),
            ("CHECKOUT_MAX_USD", "lots"),
            ("ELEVENLABS_USD_PER_CREDIT", "0"),
            ("ELEVENLABS_USD_PER_CREDIT", "cheap"),
            ("TEST_PRICE_DATE", "2026-11-16"),
        ] {
            let e = settings_from(&only(name, value)).unwrap_err();
            assert!(e.message.contains(name), "{name}: {}", e.message);
            assert_eq!(e.status(), 503);
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = settings_from(&|_| None).unwrap();
        assert_eq!(s.rate, CreditRate::default_rate());
        assert_eq!(s.default_plan, "free");
        assert_eq!(s.admin_failure_limit, RateLimit { limit: 10, window_ms: 900_000 });
        assert_eq!((s.hold_sweep_after_secs, s.ledger_keep), (7200, 10_000));
        assert_eq!((s.slow_upstream_ms, s.high_cost_usd_micro), (1000, 500_000));
        assert_eq!(s.head_timeouts, HeadTimeouts { chat_ms: 600_000, image_ms: 600_000, speech_ms: 60_000, music_ms: 300_000 });
        assert_eq!(s.head_timeouts.for_product("music"), 300_000);
        assert_eq!(s.base_url(Provider::Anthropic), "https://api.anthropic.com");
        assert_eq!(s.elevenlabs_pico_per_credit, 300_000_000, "$0.0003 a credit");
        let local = settings_from(&|k| (k == "OPENAI_BASE_URL").then(|| "http://127.0.0.1:8090/openai/".into())).unwrap();
        assert_eq!(local.base_url(Provider::OpenAi), "http://127.0.0.1:8090/openai");
    }

    #[test]
    fn the_test_price_date_is_honoured_on_the_local_stack_only() {
        let with = |url: &'static str| move |k: &str| match k {
            "TEST_PRICE_DATE" => Some("2026-11-16".to_string()),
            "UPSTASH_REDIS_REST_URL" => Some(url.to_string()),
            _ => None,
        };
        assert_eq!(settings_from(&with("http://127.0.0.1:8079")).unwrap().price_date.as_deref(), Some("2026-11-16"));
        let e = settings_from(&with("https://eu1-calm-fox.upstash.io")).unwrap_err();
        assert_eq!(e.status(), 503);
        assert!(e.message.contains("TEST_PRICE_DATE") && e.message.contains("test-only"), "{}", e.message);
        assert_eq!(settings_from(&|_| None).unwrap().price_date, None);
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("sk-live-very-secret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "sk-live-very-secret");
    }
}
