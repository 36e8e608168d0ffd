//! Ledger entries as stored by the scripts (one JSON object per list item, newest first) and
//! the customer view of them.

use crate::money::credits_json;
use serde_json::{json, Value};

/// Renders a stored entry for customers and admins: amounts in credits as well as millicredits.
pub fn public_entry(raw: &str) -> Value {
    let mut v: Value = serde_json::from_str(raw).unwrap_or_else(|_| json!({ "type": "unreadable", "raw": raw }));
    for (mc_field, credits_field) in [("amount", "credits"), ("balance", "balance_credits")] {
        if let Some(mc) = v.get(mc_field).and_then(Value::as_i64) {
            v[credits_field] = credits_json(mc);
        }
    }
    if let Some(obj) = v.as_object_mut() {
        if let Some(mc) = obj.remove("amount") {
            obj.insert("amount_mc".into(), mc);
        }
        if let Some(mc) = obj.remove("balance") {
            obj.insert("balance_mc".into(), mc);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_render_credits() {
        let v = public_entry(r#"{"ts":1,"type":"charge","amount":-27,"balance":973,"ref":"req_1"}"#);
        assert_eq!(v["credits"], json!(-0.027));
        assert_eq!(v["amount_mc"], -27);
        assert_eq!(v["balance_credits"], json!(0.973));
    }
}
