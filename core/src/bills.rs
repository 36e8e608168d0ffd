//! `GET /v1/requests/{request_id}`: one call's bill, for the key that made it, read from what the
//! gateway already keeps (`lua/bill_v2.lua`): the open hold while the call runs, then the call's
//! ledger entry and a correction of a sweep. Kept as long as the ledger keeps the entry.

use crate::error::ApiError;
use crate::money::credits_json;
use crate::scripts::bad_reply;
use serde_json::{json, Map, Value};

/// What `bill_v2` found for a request id of the key.
#[derive(Debug, Clone, PartialEq)]
pub enum BillReply {
    /// Still open: the hold (mc), the admission time (ms) and the call's ledger fields.
    Held { hold_mc: i64, admitted_ms: i64, meta: String },
    /// The key's ledger entries with this reference, newest first (none: not this key's call).
    Ledger(Vec<String>),
}

impl BillReply {
    pub fn decode(v: &Value) -> Result<BillReply, ApiError> {
        let arr = v.as_array().ok_or_else(|| bad_reply("bill_v2", v))?;
        let s = |i: usize| arr.get(i).and_then(|x| x.as_str().map(str::to_string).or_else(|| x.as_i64().map(|n| n.to_string())));
        match s(0).as_deref() {
            Some("held") => {
                let num = |i| s(i).and_then(|t| t.split('.').next().and_then(|n| n.parse::<i64>().ok()));
                Ok(BillReply::Held { hold_mc: num(1).ok_or_else(|| bad_reply("bill_v2", v))?, admitted_ms: num(2).unwrap_or(0), meta: s(3).unwrap_or_default() })
            }
            Some("ledger") => Ok(BillReply::Ledger(arr.iter().skip(1).filter_map(|e| e.as_str().map(str::to_string)).collect())),
            _ => Err(bad_reply("bill_v2", v)),
        }
    }
}

/// A request id as the gateway makes them (`x-request-id`); anything else cannot be a call.
pub fn valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn fields(fragment: &str) -> Map<String, Value> {
    let frag = fragment.trim().trim_start_matches(',');
    serde_json::from_str::<Value>(&format!("{{{frag}}}")).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default()
}

fn entry(raw: &str) -> Map<String, Value> {
    serde_json::from_str::<Value>(raw).ok().and_then(|v| v.as_object().cloned()).unwrap_or_default()
}

fn money(mc: Option<i64>) -> (Value, Value) {
    mc.map_or((Value::Null, Value::Null), |m| (credits_json(m), json!(m)))
}

/// The public bill of `request_id`, or a 404 when the key has no such call (another key's call
/// is a 404 too: its existence is not the caller's business).
pub fn bill_json(request_id: &str, reply: &BillReply) -> Result<Value, ApiError> {
    let missing = || ApiError::not_found(format!("no call {request_id} of this API key (calls are kept as long as the ledger keeps their entry)"));
    let (status, info, hold, charged, admitted, settled, corrected) = match reply {
        BillReply::Held { hold_mc, admitted_ms, meta } => ("held", fields(meta), *hold_mc, None, Some(*admitted_ms), None, None),
        BillReply::Ledger(raw) => {
            let entries: Vec<Map<String, Value>> = raw.iter().map(|r| entry(r)).collect();
            let is = |e: &Map<String, Value>, t: &str| e.get("type").and_then(Value::as_str) == Some(t);
            let call = entries.iter().find(|e| is(e, "call")).ok_or_else(missing)?;
            let correction = entries.iter().find(|e| is(e, "correction"));
            let int = |e: &Map<String, Value>, f: &str| e.get(f).and_then(Value::as_i64);
            let charged = -int(call, "amount").unwrap_or(0) - correction.and_then(|c| int(c, "amount")).unwrap_or(0);
            let swept = call.get("swept").and_then(Value::as_bool) == Some(true);
            let released = charged == 0 && call.get("note").and_then(Value::as_str).is_some_and(|n| n.starts_with("not served"));
            let status = match (swept, correction.is_some(), released) {
                (true, false, _) => "swept",
                (_, _, true) => "released",
                _ => "settled",
            };
            // A correction carries the exact settlement's fields: they supersede the sweep's.
            let mut info = call.clone();
            if let Some(c) = correction {
                for (k, v) in c {
                    info.insert(k.clone(), v.clone());
                }
            }
            (status, info, int(call, "hold").unwrap_or(0), Some(charged), int(call, "admitted_ts"), int(call, "ts"), correction.and_then(|c| int(c, "ts")))
        }
    };
    let (held_credits, held_mc) = money(Some(hold));
    let (charged_credits, charged_mc) = money(charged);
    let pick = |f: &str| info.get(f).cloned().unwrap_or(Value::Null);
    Ok(json!({
        "object": "request",
        "id": request_id,
        "status": status,
        "provider": pick("provider"),
        "model": pick("model"),
        "product": pick("product"),
        "units": pick("units"),
        "exact": if status == "held" { Value::Null } else { pick("exact") },
        "held_credits": held_credits,
        "held_mc": held_mc,
        "charged_credits": charged_credits,
        "charged_mc": charged_mc,
        "admitted_ts": admitted,
        "settled_ts": settled,
        "corrected_ts": corrected,
        "note": pick("note"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = r#""provider":"openai","model":"gpt-4o-mini","product":"chat""#;

    #[test]
    fn an_open_call_is_held_with_its_hold() {
        let b = bill_json("r1", &BillReply::Held { hold_mc: 4200, admitted_ms: 77, meta: META.into() }).unwrap();
        assert_eq!((b["status"].as_str(), b["held_mc"].as_i64(), b["charged_mc"].is_null()), (Some("held"), Some(4200), true));
        assert_eq!((b["model"].as_str(), b["admitted_ts"].as_i64()), (Some("gpt-4o-mini"), Some(77)));
    }

    #[test]
    fn settled_released_swept_and_corrected() {
        let call = |amount: i64, extra: &str| format!(r#"{{"ts":9,"type":"call","amount":{amount},"balance":1,"hold":500,"ref":"r","admitted_ts":3,{META}{extra}}}"#);
        let b = bill_json("r", &BillReply::Ledger(vec![call(-120, r#","units":{"input":3},"exact":true"#)])).unwrap();
        assert_eq!((b["status"].as_str(), b["charged_mc"].as_i64(), b["held_mc"].as_i64()), (Some("settled"), Some(120), Some(500)));
        assert_eq!((b["exact"].as_bool(), b["units"]["input"].as_i64(), b["settled_ts"].as_i64()), (Some(true), Some(3), Some(9)));
        let r = bill_json("r", &BillReply::Ledger(vec![call(0, r#","note":"not served: x; hold released""#)])).unwrap();
        assert_eq!((r["status"].as_str(), r["charged_mc"].as_i64()), (Some("released"), Some(0)));
        let swept = call(-500, r#","exact":false,"swept":true"#);
        let s = bill_json("r", &BillReply::Ledger(vec![swept.clone()])).unwrap();
        assert_eq!((s["status"].as_str(), s["charged_mc"].as_i64()), (Some("swept"), Some(500)));
        let corr = r#"{"ts":12,"type":"correction","amount":380,"balance":1,"ref":"r","exact":true}"#.to_string();
        let c = bill_json("r", &BillReply::Ledger(vec![corr, swept])).unwrap();
        assert_eq!((c["status"].as_str(), c["charged_mc"].as_i64(), c["exact"].as_bool(), c["corrected_ts"].as_i64()), (Some("settled"), Some(120), Some(true), Some(12)));
    }

    #[test]
    fn no_call_entry_is_a_404_and_ids_are_checked() {
        assert_eq!(bill_json("r", &BillReply::Ledger(vec![])).unwrap_err().status(), 404);
        assert!(valid_request_id("0f3a-9b_c") && !valid_request_id("a\"b") && !valid_request_id(""));
    }
}
