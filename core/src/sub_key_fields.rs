//! A sub-key's own fields as the scripts return them (`read_v3`, `subkeys_v1 list`), their view,
//! and the errors admission gives a sub-key (issue 25). A leaf module: the scripts' replies and
//! metering use it; the flows are `crate::subkeys`'.

use crate::error::{ApiError, ErrorKind};
use crate::money::{credits_json, credits_string};
use serde_json::{json, Value};

/// The fields `read_v3` adds after the 16 of every key (empty for an account key).
pub const READ_FIELDS: usize = 12;

/// A sub-key's caps, millicredits (`None`: no cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Caps {
    pub daily: Option<i64>,
    pub monthly: Option<i64>,
    pub total: Option<i64>,
}

/// A sub-key's spend as stored: each period counter with the period it counts (`YYYY-MM-DD`,
/// `YYYY-MM`), the total, and what its open calls hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Spend {
    pub day_mc: i64,
    pub day_at: String,
    pub month_mc: i64,
    pub month_at: String,
    pub total_mc: i64,
    pub held_mc: i64,
}

impl Spend {
    /// Today's and this month's spend (a counter of an earlier period counts zero).
    pub fn current(&self, today: &str) -> (i64, i64) {
        let day = if self.day_at == today { self.day_mc } else { 0 };
        let month = if today.get(..7) == Some(self.month_at.as_str()) { self.month_mc } else { 0 };
        (day, month)
    }
}

/// A sub-key's own fields, as `read_v3` and `subkeys_v1 list` return them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubKeyFields {
    /// The account key's id.
    pub parent: String,
    pub parent_status: String,
    /// `<provider>/<model>` ids; empty: every model.
    pub models: Vec<String>,
    pub caps: Caps,
    pub spend: Spend,
}

pub(crate) fn text(v: &Value, i: usize) -> String {
    match v.get(i) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

pub(crate) fn int(v: &Value, i: usize) -> Option<i64> {
    text(v, i).parse().ok()
}

/// `",a,b,"` (how the scripts keep a model list) → `[a, b]`.
pub(crate) fn models_of(stored: &str) -> Vec<String> {
    stored.split(',').filter(|m| !m.is_empty()).map(str::to_string).collect()
}

impl SubKeyFields {
    /// `read_v3`'s sub-key fields from position `at`: parent, parent status, models, the three
    /// caps, day spend and day, month spend and month, total spend, held. `None` without a parent.
    pub fn decode_read(v: &Value, at: usize) -> Option<SubKeyFields> {
        let parent = text(v, at);
        if parent.is_empty() {
            return None;
        }
        let f = |i: usize| at + i;
        Some(SubKeyFields {
            parent,
            parent_status: text(v, f(1)),
            models: models_of(&text(v, f(2))),
            caps: Caps { daily: int(v, f(3)), monthly: int(v, f(4)), total: int(v, f(5)) },
            spend: Spend {
                day_mc: int(v, f(6)).unwrap_or(0),
                day_at: text(v, f(7)),
                month_mc: int(v, f(8)).unwrap_or(0),
                month_at: text(v, f(9)),
                total_mc: int(v, f(10)).unwrap_or(0),
                held_mc: int(v, f(11)).unwrap_or(0),
            },
        })
    }

    /// The least any cap leaves for a new hold (cap − spend in its period − open holds), with
    /// that cap's name as admission reports it (`admit_v6`'s `room`); `None` without caps.
    pub fn room(&self, today: &str) -> Option<(i64, &'static str)> {
        let (day, month) = self.spend.current(today);
        [(self.caps.daily, day, "daily_cap"), (self.caps.monthly, month, "monthly_cap"), (self.caps.total, self.spend.total_mc, "total_cap")]
            .into_iter()
            .filter_map(|(cap, spent, name)| cap.map(|c| (c - spent - self.spend.held_mc, name)))
            .min_by_key(|(left, _)| *left)
    }

    /// Caps, spend and what each cap leaves (credits), as `/v1/keys` and `/v1/balance` show them.
    pub fn json(&self, today: &str) -> Value {
        let (day, month) = self.spend.current(today);
        let held = self.spend.held_mc;
        let left = |cap: Option<i64>, spent: i64| cap.map_or(Value::Null, |c| credits_json((c - spent - held).max(0)));
        let cap = |c: Option<i64>| c.map_or(Value::Null, credits_json);
        json!({
            "models": if self.models.is_empty() { Value::Null } else { json!(self.models) },
            "caps": { "daily": cap(self.caps.daily), "monthly": cap(self.caps.monthly), "total": cap(self.caps.total) },
            "spend": { "today": credits_json(day), "this_month": credits_json(month), "total": credits_json(self.spend.total_mc), "held": credits_json(held) },
            "spend_mc": { "today": day, "this_month": month, "total": self.spend.total_mc, "held": held },
            "remaining": { "daily": left(self.caps.daily, day), "monthly": left(self.caps.monthly, month), "total": left(self.caps.total, self.spend.total_mc) },
        })
    }
}

/// 402 when a sub-key's cap cannot cover even the smallest hold of the call.
pub fn cap_reached(needed_mc: i64, room_mc: i64, cap: &str) -> ApiError {
    ApiError::new(
        ErrorKind::InsufficientCredits,
        format!("this sub-key's {} leaves {} credits; this call may cost up to {}", cap.replace('_', " "), credits_string(room_mc.max(0)), credits_string(needed_mc)),
    )
    .with_details(json!({ "code": "sub_key_cap_reached", "cap": cap, "credits_required": credits_json(needed_mc), "credits_left_in_cap": credits_json(room_mc.max(0)) }))
}

/// 403 when a sub-key may not use the model.
pub fn model_not_allowed(model: &str) -> ApiError {
    ApiError::new(ErrorKind::Forbidden, format!("this sub-key may not use `{model}`")).with_details(json!({ "code": "model_not_allowed", "model": model }))
}


/// 403 for a sub-key (`sub`) on what only its account may do (`what`).
pub fn forbid(sub: Option<&SubKeyFields>, what: &str) -> Result<(), ApiError> {
    match sub {
        Some(_) => Err(ApiError::new(ErrorKind::Forbidden, format!("a sub-key cannot {what}: use its account key")).with_details(json!({ "code": "sub_key_forbidden" }))),
        None => Ok(()),
    }
}
