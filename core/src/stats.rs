//! Usage analytics: cost versus revenue. The settlement and payment scripts keep daily rollups in
//! the same atomic step as the ledger (see `redis_keys`); this module turns a date range of them
//! into the report of `GET /admin/stats`. Every amount is also given as an exact integer
//! (`*_mc`, `*_usd_micro`), so the report can be checked against the ledger to the unit.

use crate::error::ApiError;
use crate::money::{credits_json, Decimal};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The longest range one report covers.
pub const MAX_DAYS: i64 = 366;

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (Howard Hinnant's days-from-civil).
fn day_number(date: &str) -> Option<i64> {
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = date[0..4].parse().ok()?;
    let m: i64 = date[5..7].parse().ok()?;
    let d: i64 = date[8..10].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let n = era * 146_097 + doe - 719_468;
    // Reject dates that do not exist (2026-02-30): they do not survive the round trip.
    (crate::pricing::utc_date((n as u64) * 86_400_000) == date).then_some(n)
}

/// Every day from `from` to `to`, inclusive.
pub fn days(from: &str, to: &str) -> Result<Vec<String>, ApiError> {
    let bad = |which: &str, v: &str| ApiError::invalid(format!("`{which}` must be a date YYYY-MM-DD, not `{v}`"));
    let a = day_number(from).ok_or_else(|| bad("from", from))?;
    let b = day_number(to).ok_or_else(|| bad("to", to))?;
    if b < a {
        return Err(ApiError::invalid("`to` is before `from`"));
    }
    if b - a >= MAX_DAYS {
        return Err(ApiError::invalid(format!("a report covers at most {MAX_DAYS} days")));
    }
    Ok((a..=b).map(|n| crate::pricing::utc_date(n as u64 * 86_400_000)).collect())
}

/// A Redis `HGETALL` reply (`[field, value, …]`) as a map of integers.
fn fields(reply: &Value) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    if let Some(a) = reply.as_array() {
        for pair in a.chunks(2) {
            if let [Value::String(k), v] = pair {
                let n = v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or(0);
                out.insert(k.clone(), n);
            }
        }
    }
    out
}

/// Micro-USD of revenue for millicredits charged, at `USD_PER_CREDIT` (rounded down).
fn revenue_micro(charged_mc: i64, usd_per_credit: &Decimal) -> i64 {
    let num = i128::from(charged_mc) * 1000 * usd_per_credit.num as i128;
    i64::try_from(num / usd_per_credit.den as i128).unwrap_or(i64::MAX)
}

fn usd(micro: i64) -> Value {
    json!(micro as f64 / 1e6)
}

#[derive(Default, Clone, Copy)]
struct Line {
    calls: i64,
    units: i64,
    cost_micro: i64,
    charged_mc: i64,
    corrected_mc: i64,
    /// Calls whose exact usage came to more than their hold, what they held and were charged.
    exceeded: i64,
    exceeded_hold_mc: i64,
    exceeded_charged_mc: i64,
}

impl Line {
    fn add(&mut self, metric: &str, n: i64) {
        match metric {
            "calls" => self.calls += n,
            "units" => self.units += n,
            "cost_micro" => self.cost_micro += n,
            "charged_mc" => self.charged_mc += n,
            "corrected_mc" => self.corrected_mc += n,
            "exceeded" => self.exceeded += n,
            "exceeded_hold_mc" => self.exceeded_hold_mc += n,
            "exceeded_charged_mc" => self.exceeded_charged_mc += n,
            _ => {}
        }
    }

    fn plus(&mut self, o: &Line) {
        for (m, n) in [
            ("calls", o.calls),
            ("units", o.units),
            ("cost_micro", o.cost_micro),
            ("charged_mc", o.charged_mc),
            ("corrected_mc", o.corrected_mc),
            ("exceeded", o.exceeded),
            ("exceeded_hold_mc", o.exceeded_hold_mc),
            ("exceeded_charged_mc", o.exceeded_charged_mc),
        ] {
            self.add(m, n);
        }
    }

    fn to_json(self, usd_per_credit: &Decimal, view: View) -> Value {
        if view == View::Customer {
            return json!({ "calls": self.calls, "units": self.units, "credits_charged": credits_json(self.charged_mc), "charged_mc": self.charged_mc });
        }
        let revenue = revenue_micro(self.charged_mc, usd_per_credit);
        let mut v = json!({
            "calls": self.calls,
            "units": self.units,
            "cost_usd": usd(self.cost_micro),
            "cost_usd_micro": self.cost_micro,
            "credits_charged": credits_json(self.charged_mc),
            "charged_mc": self.charged_mc,
            "corrections_mc": self.corrected_mc,
            "revenue_usd": usd(revenue),
            "revenue_usd_micro": revenue,
            "margin_usd": usd(revenue - self.cost_micro),
        });
        // A hold that was not a bound: a pricing bug to fix, named per model with both figures.
        if self.exceeded != 0 {
            v["hold_exceeded"] = json!({ "calls": self.exceeded, "held_mc": self.exceeded_hold_mc, "charged_mc": self.exceeded_charged_mc });
        }
        v
    }
}

/// Who reads a report: an admin sees provider costs, revenue, margins and payments; a customer
/// only its own calls, units and credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Admin,
    Customer,
}

/// The report for `days`, given each day's call rollup and payments rollup (`HGETALL` replies,
/// in the order of `days`).
pub fn report(days: &[String], calls: &[Value], payments: &[Value], usd_per_credit: &Decimal, key_id: Option<&str>, view: View) -> Value {
    let mut total = Line::default();
    let mut out = Vec::new();
    for (i, day) in days.iter().enumerate() {
        let mut models: BTreeMap<String, Line> = BTreeMap::new();
        for (field, n) in fields(calls.get(i).unwrap_or(&Value::Null)) {
            if let Some((model, metric)) = field.rsplit_once(':') {
                models.entry(model.to_string()).or_default().add(metric, n);
            }
        }
        let mut day_total = Line::default();
        let rows: Vec<Value> = models
            .iter()
            .map(|(m, l)| {
                day_total.plus(l);
                let mut v = l.to_json(usd_per_credit, view);
                v["model"] = json!(m);
                v
            })
            .collect();
        total.plus(&day_total);
        let pay = fields(payments.get(i).unwrap_or(&Value::Null));
        let mut money = Map::new();
        for kind in ["topup", "grant", "adjustment", "import", "refund", "dispute", "dispute_won", "dispute_lost"] {
            let mc = pay.get(&format!("{kind}:mc")).copied().unwrap_or(0);
            let count = pay.get(&format!("{kind}:count")).copied().unwrap_or(0);
            if count != 0 {
                money.insert(kind.to_string(), json!({ "count": count, "credits": credits_json(mc), "mc": mc, "usd": usd(revenue_micro(mc, usd_per_credit)) }));
            }
        }
        if rows.is_empty() && (money.is_empty() || view == View::Customer) {
            continue;
        }
        let mut d = json!({ "day": day, "models": rows, "totals": day_total.to_json(usd_per_credit, view) });
        if view == View::Admin {
            d["payments"] = Value::Object(money);
        }
        out.push(d);
    }
    json!({
        "from": days.first(),
        "to": days.last(),
        "key_id": key_id,
        "days": out,
        "totals": total.to_json(usd_per_credit, view),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked_dates() {
        assert_eq!(days("2026-02-27", "2026-03-02").unwrap(), ["2026-02-27", "2026-02-28", "2026-03-01", "2026-03-02"]);
        assert_eq!(days("2024-02-28", "2024-03-01").unwrap().len(), 3, "a leap year");
        for (a, b) in [("2026-02-30", "2026-03-01"), ("2026-1-1", "2026-01-02"), ("yesterday", "2026-01-01"), ("2026-03-01", "2026-02-01"), ("2024-01-01", "2025-12-31")] {
            assert_eq!(days(a, b).unwrap_err().status(), 400, "{a}..{b}");
        }
    }

    #[test]
    fn a_report_sums_models_days_and_payments_exactly() {
        let upc = Decimal::parse("0.01").unwrap();
        let d = days("2026-11-26", "2026-11-27").unwrap();
        let calls = [
            json!(["openai/gpt-4o-mini:calls", "2", "openai/gpt-4o-mini:units", "60", "openai/gpt-4o-mini:cost_micro", "30", "openai/gpt-4o-mini:charged_mc", "6"]),
            json!(["anthropic/claude-haiku-4-5:calls", "1", "anthropic/claude-haiku-4-5:charged_mc", "500", "anthropic/claude-haiku-4-5:cost_micro", "2000", "anthropic/claude-haiku-4-5:corrected_mc", "40"]),
        ];
        let payments = [Value::Null, json!(["topup:count", "1", "topup:mc", "2000000", "refund:count", "1", "refund:mc", "-500000"])];
        let r = report(&d, &calls, &payments, &upc, None, View::Admin);
        assert_eq!(r["totals"]["calls"], 3);
        assert_eq!(r["totals"]["charged_mc"], 506);
        assert_eq!(r["totals"]["revenue_usd_micro"], 5060, "506 mc = 0.506 credits = $0.00506");
        assert_eq!(r["totals"]["cost_usd_micro"], 2030);
        assert_eq!(r["days"][0]["models"][0]["model"], "openai/gpt-4o-mini");
        assert_eq!(r["days"][1]["payments"]["topup"]["usd"], json!(20.0));
        assert_eq!(r["days"][1]["payments"]["refund"]["credits"], json!(-500));
        assert_eq!(r["days"][1]["totals"]["corrections_mc"], 40);
        let mine = report(&d, &calls, &payments, &upc, Some("key_1"), View::Customer).to_string();
        for secret in ["cost", "revenue", "margin", "payments", "topup"] {
            assert!(!mine.contains(secret), "a customer does not see `{secret}`: {mine}");
        }
    }
}
