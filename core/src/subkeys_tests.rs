use super::*;
use serde_json::json;

fn limits() -> RateLimits {
    RateLimits::parse("free:ai=10/3600, free:media=10/3600, pro:ai=100/3600, pro:media=100/3600, burst:ai=50/60, bulk:ai=100000/3600, bulk:media=100000/3600, anonymous=5/900").unwrap()
}

fn body(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn sold(id: &str) -> bool {
    ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"].contains(&id)
}

fn refused(v: Value, account_plan: &str) -> (u16, String, Value) {
    let e = parse_create(&body(v), account_plan, &limits(), &sold).unwrap_err();
    (e.status(), e.message.clone(), e.details.unwrap_or(Value::Null)["param"].clone())
}

#[test]
fn plans_compare_by_rate_on_every_class() {
    let l = limits();
    assert!(plan_at_most(&l, "free", "pro"));
    assert!(plan_at_most(&l, "pro", "pro"));
    assert!(!plan_at_most(&l, "pro", "free"));
    // 50 a minute is 3,000 an hour: more than pro's 100 an hour, though its limit is lower.
    assert!(!plan_at_most(&l, "burst", "pro"));
    assert!(plan_at_most(&l, "burst", "bulk"));
    // bulk has a media class burst lacks: burst is no higher than bulk, but bulk is higher than burst.
    assert!(!plan_at_most(&l, "bulk", "burst"));
}

#[test]
fn a_sub_key_is_checked_field_by_field() {
    let ok = parse_create(&body(json!({"name": " ci ", "daily_cap": 1.5, "monthly_cap": "20", "total_cap": 0, "models": ["openai/gpt-4o-mini", "openai/gpt-4o-mini"], "plan": "free"})), "pro", &limits(), &sold).unwrap();
    assert_eq!(ok, NewSubKey { name: "ci".into(), plan: "free".into(), caps: Caps { daily: Some(1_500), monthly: Some(20_000), total: Some(0) }, models: vec!["openai/gpt-4o-mini".into()] });
    let bare = parse_create(&body(json!({"name": "x"})), "pro", &limits(), &sold).unwrap();
    assert_eq!((bare.plan.as_str(), bare.caps, bare.models.len()), ("pro", Caps::default(), 0), "the account's plan, no caps, every model");
    for (input, param) in [
        (json!({"name": "x", "colour": "red"}), "colour"),
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "daily_cap": -1}), "daily_cap"),
        (json!({"name": "x", "monthly_cap": -0.001}), "monthly_cap"),
        (json!({"name": "x", "total_cap": "lots"}), "total_cap"),
        (json!({"name": "x", "total_cap": 0.0001}), "total_cap"),
        (json!({"name": "x", "models": ["openai/gpt-9"]}), "models"),
        (json!({"name": "x", "models": []}), "models"),
        (json!({"name": "x", "models": "openai/gpt-4o-mini"}), "models"),
        (json!({"name": "x", "plan": "bulk"}), "plan"),
        (json!({"name": "x", "plan": "platinum"}), "plan"),
    ] {
        let (status, message, named) = refused(input.clone(), "pro");
        assert_eq!((status, named.as_str()), (400, Some(param)), "{input}: {message}");
        assert!(message.contains(&format!("`{param}`")), "{input}: {message}");
    }
}

#[test]
fn the_script_arguments_carry_caps_models_and_the_ledger_tag() {
    let new = NewSubKey { name: "ci \"bot\"".into(), plan: "free".into(), caps: Caps { daily: Some(1_500), monthly: None, total: Some(0) }, models: vec!["openai/gpt-4o-mini".into(), "anthropic/claude-haiku-4-5".into()] };
    let argv = SubKeyOp::Create { account: "key_000000000000000a", sub_id: "key_000000000000000b", key_hash: "h".into(), new: &new }.argv(7);
    assert_eq!(argv[..10], ["create", "key_000000000000000a", "7", "key_000000000000000b", "h", "ci \"bot\"", "free", "1500", "", "0"].map(String::from));
    assert_eq!(argv[10], ",openai/gpt-4o-mini,anthropic/claude-haiku-4-5,");
    let tag: Value = serde_json::from_str(&format!("{{{}}}", argv[11])).unwrap();
    assert_eq!(tag, json!({"sub_key": "key_000000000000000b", "sub_key_name": "ci \"bot\""}));
    assert!(argv[11].starts_with("\"sub_key\":\"key_000000000000000b\""), "settle_v6 finds the sub-key at the start");
    assert_eq!(argv[12], "100");
    assert_eq!(SubKeyOp::Revoke { account: "a", sub_id: "b" }.argv(1), ["revoke", "a", "1", "b"]);
}

#[test]
fn spend_counts_only_the_current_periods_and_caps_show_what_is_left() {
    let f = SubKeyFields {
        parent: "key_000000000000000a".into(),
        parent_status: "active".into(),
        models: vec![],
        caps: Caps { daily: Some(1_000), monthly: Some(5_000), total: None },
        spend: Spend { day_mc: 700, day_at: "2026-11-15".into(), month_mc: 2_000, month_at: "2026-11".into(), total_mc: 9_000, held_mc: 100 },
    };
    let v = f.json("2026-11-16");
    assert_eq!(v["spend_mc"], json!({"today": 0, "this_month": 2000, "total": 9000, "held": 100}), "yesterday's spend is not today's");
    assert_eq!(v["remaining"], json!({"daily": 0.9, "monthly": 2.9, "total": null}));
    assert_eq!(v["models"], Value::Null);
    let v = f.json("2026-12-01");
    assert_eq!(v["spend_mc"]["this_month"], 0);
}

#[test]
fn replies_decode() {
    let row = json!(["key_000000000000000b", "ci", "active", "free", "5", "", "", "", "1000", "", "2000", ",openai/gpt-4o-mini,", "30", "2026-11-16", "30", "2026-11", "30", "7"]);
    let r = SubKeyReply::decode(&json!(["list", row]), "key_000000000000000a").unwrap();
    let SubKeyReply::Listed(keys) = r else { panic!("{r:?}") };
    assert_eq!(keys[0].fields.caps, Caps { daily: Some(1000), monthly: None, total: Some(2000) });
    assert_eq!(keys[0].fields.models, ["openai/gpt-4o-mini"]);
    assert_eq!(keys[0].json("2026-11-16")["remaining"]["total"], json!(1.963));
    assert_eq!(SubKeyReply::decode(&json!(["list"]), "a").unwrap(), SubKeyReply::Listed(vec![]));
    assert_eq!(SubKeyReply::decode(&json!(["ok", 3]), "a").unwrap(), SubKeyReply::Ok(3));
    assert_eq!(SubKeyReply::decode(&json!(["ok"]), "a").unwrap(), SubKeyReply::Ok(0));
    assert!(SubKeyReply::decode(&json!(["list", ["not a key id"]]), "a").is_err());
    assert_eq!(SubKeyReply::decode(&json!(["too_many", 100]), "a").unwrap(), SubKeyReply::TooMany(100));
    assert_eq!(SubKeyReply::decode(&json!(["forbidden"]), "a").unwrap(), SubKeyReply::Forbidden);
    assert_eq!(SubKeyReply::decode(&json!(["what"]), "a").unwrap_err().status(), 503);
}

#[test]
fn a_cap_reached_is_a_402_naming_the_cap() {
    let e = cap_reached(1_500, 200, "daily_cap");
    assert_eq!(e.status(), 402);
    assert_eq!(e.details.as_ref().unwrap()["code"], "sub_key_cap_reached");
    assert!(e.message.contains("daily cap leaves 0.2 credits"), "{}", e.message);
    assert_eq!(model_not_allowed("openai/gpt-4o").status(), 403);
}
