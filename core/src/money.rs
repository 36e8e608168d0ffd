//! Integer money.
//!
//! Balances are millicredits (1 credit = 1000 mc). Provider prices are integer micro-USD per
//! 1M tokens, which is pico-USD per token, so a cost is an exact integer of pico-USD. The
//! conversion `credits = usd × MARGIN_MULTIPLIER ÷ USD_PER_CREDIT` is done on exact decimals
//! (parsed into numerator/denominator) with one final ceiling, so nothing is rounded twice and
//! no float ever touches a balance.

use crate::error::ApiError;

pub const MILLI_PER_CREDIT: i64 = 1000;
const PICO_PER_USD: u128 = 1_000_000_000_000;

/// A non-negative decimal such as `1.8` or `0.01`, kept exact as `num / den`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    pub num: u128,
    pub den: u128,
}

impl Decimal {
    /// Parses `"1.8"`, `"0.01"`, `"2"`. At most 12 fractional digits; no sign, no exponent.
    pub fn parse(s: &str) -> Result<Decimal, String> {
        let s = s.trim();
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        let digits_ok = |p: &str| p.chars().all(|c| c.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !digits_ok(int) || !digits_ok(frac) || frac.len() > 12 {
            return Err(format!("`{s}` is not a plain decimal number"));
        }
        let den = 10u128.pow(frac.len() as u32);
        let int_v: u128 = if int.is_empty() { 0 } else { int.parse().map_err(|_| format!("`{s}` is too large"))? };
        let frac_v: u128 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| format!("`{s}` is invalid"))? };
        let num = int_v.checked_mul(den).and_then(|v| v.checked_add(frac_v)).ok_or_else(|| format!("`{s}` is too large"))?;
        Ok(Decimal { num, den })
    }
    pub fn is_zero(&self) -> bool {
        self.num == 0
    }
}

/// The two knobs that turn provider USD into customer credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditRate {
    pub margin: Decimal,
    pub usd_per_credit: Decimal,
}

impl CreditRate {
    pub fn new(margin: Decimal, usd_per_credit: Decimal) -> Result<Self, ApiError> {
        if margin.is_zero() || usd_per_credit.is_zero() {
            return Err(ApiError::unavailable("MARGIN_MULTIPLIER and USD_PER_CREDIT must be positive"));
        }
        Ok(CreditRate { margin, usd_per_credit })
    }

    /// The defaults of the original product: 1.8 × margin, $0.01 per credit.
    pub fn default_rate() -> Self {
        CreditRate { margin: Decimal { num: 18, den: 10 }, usd_per_credit: Decimal { num: 1, den: 100 } }
    }

    /// Millicredits for a provider cost in pico-USD, rounded up (never undercharge).
    pub fn millicredits_for_pico_usd(&self, pico_usd: u128) -> i64 {
        // mc = pico / 1e12 × (m.num/m.den) ÷ (u.num/u.den) × 1000
        let num = pico_usd
            .saturating_mul(self.margin.num)
            .saturating_mul(self.usd_per_credit.den)
            .saturating_mul(MILLI_PER_CREDIT as u128);
        let den = PICO_PER_USD
            .saturating_mul(self.margin.den)
            .saturating_mul(self.usd_per_credit.num);
        let mc = num.div_ceil(den);
        i64::try_from(mc).unwrap_or(i64::MAX)
    }

    /// US cents that buy `mc` millicredits (rounded up: a pack is never sold below its price).
    pub fn cents_for_millicredits(&self, mc: i64) -> u64 {
        // cents = mc / 1000 × u.num / u.den × 100
        let num = (mc.max(0) as u128).saturating_mul(self.usd_per_credit.num).saturating_mul(100);
        let den = (MILLI_PER_CREDIT as u128).saturating_mul(self.usd_per_credit.den);
        u64::try_from(num.div_ceil(den)).unwrap_or(u64::MAX)
    }

    /// Millicredits bought by a payment of `cents` US cents (rounded down: never over-credit).
    pub fn millicredits_for_usd_cents(&self, cents: u64) -> i64 {
        // credits = usd / usd_per_credit = cents/100 × u.den / u.num
        let num = (cents as u128).saturating_mul(self.usd_per_credit.den).saturating_mul(MILLI_PER_CREDIT as u128);
        let den = 100u128.saturating_mul(self.usd_per_credit.num);
        i64::try_from(num / den).unwrap_or(i64::MAX)
    }
}

/// The share of `credited_mc` a refund of `refunded_cents` out of `paid_cents` takes back,
/// rounded up (a refund never leaves a fraction of a millicredit behind): credited ×
/// min(refunded, paid) / paid, in integers. Paid 0: `refunded_cents` is already the
/// millicredits to take back (PayPal's, computed by `paypal`), at most what was credited.
pub fn refund_share_mc(credited_mc: i64, refunded_cents: u64, paid_cents: u64) -> i64 {
    if credited_mc <= 0 {
        return 0;
    }
    if paid_cents == 0 {
        return i64::try_from(refunded_cents).unwrap_or(i64::MAX).min(credited_mc);
    }
    let num = u128::from(credited_mc.unsigned_abs()) * u128::from(refunded_cents.min(paid_cents));
    i64::try_from(num.div_ceil(u128::from(paid_cents))).unwrap_or(i64::MAX)
}

/// `"20.00"` USD → 2000 cents, exactly (more than two decimals is not an amount).
pub fn usd_cents(value: &str) -> Option<u64> {
    let d = Decimal::parse(value).ok()?;
    let cents = d.num.checked_mul(100)?;
    (cents % d.den == 0).then(|| u64::try_from(cents / d.den).ok()).flatten()
}

/// Renders millicredits as a credit number for JSON (`27` → `0.027`).
pub fn credits_json(mc: i64) -> serde_json::Value {
    if mc % MILLI_PER_CREDIT == 0 {
        serde_json::Value::from(mc / MILLI_PER_CREDIT)
    } else {
        // Three decimals are exact in f64 for any realistic balance (< 2^53 mc).
        serde_json::Value::from(mc as f64 / MILLI_PER_CREDIT as f64)
    }
}

/// Renders millicredits as a header value (`27` → `"0.027"`), exact.
pub fn credits_string(mc: i64) -> String {
    let sign = if mc < 0 { "-" } else { "" };
    let a = mc.unsigned_abs();
    let whole = a / 1000;
    let frac = a % 1000;
    if frac == 0 {
        format!("{sign}{whole}")
    } else {
        let f = format!("{frac:03}");
        format!("{sign}{whole}.{}", f.trim_end_matches('0'))
    }
}

/// Parses a credit amount given by an admin or a payment (`5000`, `"12.5"`) into millicredits.
pub fn parse_credits(v: &serde_json::Value) -> Result<i64, String> {
    let text = match v {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        _ => return Err("credits must be a number".into()),
    };
    let negative = text.starts_with('-');
    let d = Decimal::parse(text.trim_start_matches('-')).map_err(|e| format!("credits: {e}"))?;
    let mc = d.num.saturating_mul(MILLI_PER_CREDIT as u128);
    if mc % d.den != 0 {
        return Err("credits may have at most 3 decimals".into());
    }
    let mc = i64::try_from(mc / d.den).map_err(|_| "credits too large".to_string())?;
    if mc > 1_000_000_000_000 {
        return Err("credits too large".into());
    }
    Ok(if negative { -mc } else { mc })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(Decimal::parse("1.8"), Ok(Decimal { num: 18, den: 10 }));
        assert_eq!(Decimal::parse("0.01"), Ok(Decimal { num: 1, den: 100 }));
        assert_eq!(Decimal::parse("2"), Ok(Decimal { num: 2, den: 1 }));
        assert!(Decimal::parse("-1").is_err());
        assert!(Decimal::parse("1e3").is_err());
        assert!(Decimal::parse("").is_err());
        assert!(Decimal::parse("abc").is_err());
    }

    #[test]
    fn usd_to_millicredits_applies_margin_and_rounds_up() {
        let r = CreditRate::default_rate();
        // $1 → 1.8 / 0.01 = 180 credits
        assert_eq!(r.millicredits_for_pico_usd(PICO_PER_USD), 180_000);
        // 1000 gpt-4o-mini input tokens at $0.15/M = $0.00015 → 0.027 credits
        assert_eq!(r.millicredits_for_pico_usd(1000 * 150_000), 27);
        // one pico-USD still costs a millicredit: never served free
        assert_eq!(r.millicredits_for_pico_usd(1), 1);
        assert_eq!(r.millicredits_for_pico_usd(0), 0);
    }

    #[test]
    fn payments_round_down() {
        let r = CreditRate::default_rate();
        assert_eq!(r.millicredits_for_usd_cents(2000), 2_000_000); // $20 → 2000 credits
        let odd = CreditRate::new(Decimal::parse("1.8").unwrap(), Decimal::parse("0.03").unwrap()).unwrap();
        assert_eq!(odd.millicredits_for_usd_cents(100), 33_333);
    }

    #[test]
    fn packs_are_priced_up_and_credited_down() {
        let r = CreditRate::default_rate();
        assert_eq!(r.cents_for_millicredits(2_000_000), 2000); // 2000 credits = $20
        assert_eq!(r.cents_for_millicredits(1), 1, "a fraction of a cent costs a cent");
        assert_eq!(r.millicredits_for_usd_cents(r.cents_for_millicredits(12_345_000)), 12_345_000);
    }

    #[test]
    fn credit_rendering_is_exact() {
        assert_eq!(credits_string(27), "0.027");
        assert_eq!(credits_string(1500), "1.5");
        assert_eq!(credits_string(2_000_000), "2000");
        assert_eq!(credits_string(-20), "-0.02");
        assert_eq!(credits_json(1500), serde_json::json!(1.5));
        assert_eq!(credits_json(3000), serde_json::json!(3));
    }

    #[test]
    fn credit_amounts_parse() {
        assert_eq!(parse_credits(&serde_json::json!(5000)), Ok(5_000_000));
        assert_eq!(parse_credits(&serde_json::json!("12.5")), Ok(12_500));
        assert_eq!(parse_credits(&serde_json::json!(-3)), Ok(-3000));
        assert!(parse_credits(&serde_json::json!(0.0001)).is_err());
        assert!(parse_credits(&serde_json::json!(true)).is_err());
    }

    #[test]
    fn refund_shares_are_exact_integers_rounded_up() {
        assert_eq!(refund_share_mc(2_000_000, 500, 2000), 500_000, "a quarter of 2,000 credits");
        assert_eq!(refund_share_mc(1000, 1, 3), 334, "1000 / 3 = 333.33… → 334");
        assert_eq!(refund_share_mc(1000, 5000, 2000), 1000, "never more than was credited");
        assert_eq!(refund_share_mc(1000, 400, 0), 400, "paid 0: the millicredits themselves (PayPal)");
        assert_eq!(refund_share_mc(1000, 4000, 0), 1000, "never more than was credited");
        // 2^52 mc refunded 2/3: floats lose the last digits (2^52 × 2 overflows 2^53's precision).
        let big = 1_i64 << 52;
        assert_eq!(refund_share_mc(big, 2, 3), 3_002_399_751_580_331, "⌈4,503,599,627,370,496 × 2 / 3⌉");
    }
}
