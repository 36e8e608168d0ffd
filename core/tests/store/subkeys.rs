//! Sub-keys (issue 25) on redis-server: `subkeys_v1`, and `admit_v6`/`settle_v6`/`read_v3` for a
//! sub-key: caps with open holds, UTC days and months, a narrowed ladder, models, revoke and rotate,
//! the 100 limit, sweep and correction. A module of `store.rs` (its harness).

use super::*;
use broker_core::subkeys::{Caps, NewSubKey, SubKeyOp, SubKeyReply};

const DAY_MS: u64 = 86_400_000;

fn op(r: &Redis, o: &SubKeyOp<'_>, account: &str) -> SubKeyReply {
    SubKeyReply::decode(&block(r.eval(&broker_core::scripts::SUBKEYS, o.argv(1))).unwrap(), account).unwrap()
}

/// A sub-key of `account` with `caps` and `models`; returns (id, hash).
fn sub_key(r: &Redis, account: &str, n: u32, caps: Caps, models: &[&str]) -> (String, String) {
    let id = format!("key_{:016x}", 0xabc0_0000 + n);
    let hash = format!("{:064x}", 0xabc0_0000 + n);
    let new = NewSubKey { name: format!("sub {n}"), plan: "pro".into(), caps, models: models.iter().map(|m| m.to_string()).collect() };
    assert!(matches!(op(r, &SubKeyOp::Create { account, sub_id: &id, key_hash: hash.clone(), new: &new }, account), SubKeyReply::Ok(_)));
    (id, hash)
}

fn admit_at(r: &Redis, hash: &str, rid: &str, now_ms: u64, hold: HoldPlan, units: u64) -> Result<Admitted, ApiError> {
    let (limits, meta) = (limits(), meta());
    block(r.admit(&Admission { key_hash: hash.into(), now_ms, request_id: rid, class: "ai", client_ip: "203.0.113.7", limits: &limits, hold, units, meta: &meta, idempotency: None }))
}

fn settle_at(r: &Redis, a: &Admitted, rid: &str, cost_pico: u128, now_ms: u64) -> SettleReply {
    block(r.settle(&billing(a, rid).settle(&Metered::exact(cost_pico, tokens(5)), now_ms, RETAIN))).unwrap()
}

fn sub_view(r: &Redis, id: &str) -> broker_core::scripts::KeyView {
    view(r, id)
}

#[test]
fn a_sub_key_spends_the_account_balance_within_its_total_cap_and_is_named_in_the_ledger() {
    let r = start();
    let (acct, _) = create_key(&r, 101, 100_000);
    let (sub, hash) = sub_key(&r, &acct, 1, Caps { total: Some(1_000), ..Caps::default() }, &[]);
    // Holds of 300: the cap (1,000) covers three at once, never a fourth.
    let admitted: Vec<Admitted> = (0..5).filter_map(|i| admit_at(&r, &hash, &format!("req_s{i}"), 1000, fixed(300), 1).ok()).collect();
    assert_eq!(admitted.len(), 3);
    let e = admit_at(&r, &hash, "req_s9", 1000, fixed(300), 1).unwrap_err();
    assert_eq!((e.status(), e.details.as_ref().unwrap()["code"].as_str()), (402, Some("sub_key_cap_reached")));
    assert_eq!(e.details.unwrap()["cap"], "total_cap");
    let k = view(&r, &acct);
    assert_eq!((k.balance_mc, k.held_mc), (99_100, 900), "the account's balance holds the sub-key's calls");
    // Settle each at 36 mc ($0.0002): the sub-key has spent 108, holds nothing.
    for (i, a) in admitted.iter().enumerate() {
        assert!(matches!(settle_at(&r, a, &format!("req_s{i}"), 200_000_000, 2000), SettleReply::Settled { charged_mc: 36, .. }));
    }
    let s = sub_view(&r, &sub);
    let f = s.sub.clone().unwrap();
    assert_eq!((f.spend.total_mc, f.spend.day_mc, f.spend.month_mc, f.spend.held_mc), (108, 108, 108, 0));
    assert_eq!((f.spend.day_at.as_str(), f.spend.month_at.as_str()), ("1970-01-01", "1970-01"));
    assert_eq!((s.balance_mc, f.parent.as_str()), (100_000 - 108, acct.as_str()), "a sub-key reads its account's balance");
    // The account's ledger names the sub-key on every call; the sub-key's own list has its calls.
    let es = entries(&r, &acct);
    assert!(es.iter().filter(|e| e["type"] == "call").all(|e| e["sub_key"] == sub.as_str() && e["sub_key_name"] == "sub 1"), "{es:?}");
    assert_eq!(s.entries.len(), 3);
    assert_ledger_invariant(&r, &acct);
    // 892 left in the cap: three more holds of 300 would pass 1,000 − 108.
    let more = (0..5).filter(|i| admit_at(&r, &hash, &format!("req_t{i}"), 3000, fixed(300), 1).is_ok()).count();
    assert_eq!(more, 2);
}

#[test]
fn the_daily_cap_starts_again_each_utc_day_and_the_monthly_cap_each_month() {
    let r = start();
    let (acct, _) = create_key(&r, 102, 100_000);
    let (sub, hash) = sub_key(&r, &acct, 2, Caps { daily: Some(500), monthly: Some(900), ..Caps::default() }, &[]);
    let a = admit_at(&r, &hash, "req_d1", 1000, fixed(400), 1).unwrap();
    settle_at(&r, &a, "req_d1", 2_000_000_000, 2000); // $0.002 → 360 mc
    let e = admit_at(&r, &hash, "req_d2", 3000, fixed(400), 1).unwrap_err();
    assert_eq!(e.details.unwrap()["cap"], "daily_cap", "360 spent today + 400 > 500");
    // The next day: the daily cap is whole again, the month's has 540 left.
    let a = admit_at(&r, &hash, "req_d3", DAY_MS + 1000, fixed(400), 1).unwrap();
    settle_at(&r, &a, "req_d3", 2_000_000_000, DAY_MS + 2000);
    let e = admit_at(&r, &hash, "req_d4", 2 * DAY_MS, fixed(400), 1).unwrap_err();
    assert_eq!(e.details.unwrap()["cap"], "monthly_cap", "720 spent this month + 400 > 900");
    // February: both are whole again.
    assert!(admit_at(&r, &hash, "req_d5", 32 * DAY_MS, fixed(400), 1).is_ok());
    assert_eq!(sub_view(&r, &sub).sub.unwrap().spend.total_mc, 720);
}

#[test]
fn a_cap_narrows_the_output_a_call_without_max_tokens_gets() {
    let r = start();
    let (acct, _) = create_key(&r, 103, 1_000_000);
    let (_, hash) = sub_key(&r, &acct, 3, Caps { total: Some(1_000), ..Caps::default() }, &[]);
    // The ladder of without_an_output_cap_admission_grants_what_the_balance_covers: under a
    // cap of 1,000 the first rung that fits is 1,695 tokens (948 mc), as a balance of 1,000.
    let plan = HoldPlan { fixed_mc: 100, flexible: Some(FlexibleOutput { per_unit_micro_mc: 500_000, max_units: 16_384, min_units: 1 }) };
    let a = admit_at(&r, &hash, "req_n", 1000, plan, 16_384).unwrap();
    assert_eq!((a.granted_units, a.hold_mc), (1_695, 948));
}

#[test]
fn allowed_models_are_enforced() {
    let r = start();
    let (acct, _) = create_key(&r, 104, 10_000);
    let (_, only_claude) = sub_key(&r, &acct, 4, Caps::default(), &["anthropic/claude-haiku-4-5"]);
    let e = admit_at(&r, &only_claude, "req_m1", 1000, fixed(10), 1).unwrap_err();
    assert_eq!((e.status(), e.details.unwrap()["model"].as_str()), (403, Some("openai/gpt-4o-mini")));
    let (_, both) = sub_key(&r, &acct, 5, Caps::default(), &["anthropic/claude-haiku-4-5", "openai/gpt-4o-mini"]);
    assert!(admit_at(&r, &both, "req_m2", 1000, fixed(10), 1).is_ok());
    assert_eq!(view(&r, &acct).held_mc, 10, "a refused model holds nothing");
}

#[test]
fn revoking_the_account_stops_its_sub_keys_and_revoking_a_sub_key_leaves_the_account() {
    let r = start();
    let (acct, acct_hash) = create_key(&r, 105, 10_000);
    let (sub, hash) = sub_key(&r, &acct, 6, Caps::default(), &[]);
    let (sub2, hash2) = sub_key(&r, &acct, 7, Caps::default(), &[]);
    assert_eq!(op(&r, &SubKeyOp::Revoke { account: &acct, sub_id: &sub2 }, &acct), SubKeyReply::Ok(0));
    assert_eq!(admit_at(&r, &hash2, "req_r1", 1000, fixed(10), 1).unwrap_err().status(), 401);
    assert!(admit_at(&r, &acct_hash, "req_r2", 1000, fixed(10), 1).is_ok(), "the account is untouched");
    let SubKeyReply::Listed(listed) = op(&r, &SubKeyOp::List { account: &acct }, &acct) else { panic!() };
    assert_eq!(listed.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(), [sub.as_str()], "a revoked sub-key leaves the list");
    // Another account cannot touch it; a sub-key cannot manage keys.
    let (other, _) = create_key(&r, 106, 0);
    assert_eq!(op(&r, &SubKeyOp::Revoke { account: &other, sub_id: &sub }, &other), SubKeyReply::Missing);
    assert_eq!(op(&r, &SubKeyOp::List { account: &sub }, &sub), SubKeyReply::Forbidden);
    block(r.key_op(&KeyOp::Revoke { key_id: &acct }, 2)).unwrap();
    let e = admit_at(&r, &hash, "req_r3", 1000, fixed(10), 1).unwrap_err();
    assert_eq!((e.status(), e.message.as_str()), (401, "this sub-key's account key has been revoked"));
}

#[test]
fn rotating_a_sub_key_keeps_its_caps_and_spend() {
    let r = start();
    let (acct, _) = create_key(&r, 107, 10_000);
    let (sub, hash) = sub_key(&r, &acct, 8, Caps { total: Some(700), ..Caps::default() }, &[]);
    let a = admit_at(&r, &hash, "req_o1", 1000, fixed(400), 1).unwrap();
    settle_at(&r, &a, "req_o1", 2_000_000_000, 2000);
    let new_hash = format!("{:064x}", 0xdead_beef_u64);
    assert_eq!(op(&r, &SubKeyOp::Rotate { account: &acct, sub_id: &sub, new_hash: new_hash.clone() }, &acct), SubKeyReply::Ok(0));
    assert_eq!(admit_at(&r, &hash, "req_o2", 1000, fixed(10), 1).unwrap_err().status(), 401, "the old key is dead");
    let e = admit_at(&r, &new_hash, "req_o3", 1000, fixed(400), 1).unwrap_err();
    assert_eq!(e.details.unwrap()["cap"], "total_cap", "360 spent + 400 > 700: the spend came along");
    assert!(admit_at(&r, &new_hash, "req_o4", 1000, fixed(300), 1).is_ok());
}

#[test]
fn an_account_has_at_most_100_sub_keys() {
    let r = start();
    let (acct, _) = create_key(&r, 108, 0);
    for n in 0..100 {
        sub_key(&r, &acct, 1000 + n, Caps::default(), &[]);
    }
    let new = NewSubKey { name: "one too many".into(), plan: "pro".into(), caps: Caps::default(), models: vec![] };
    let reply = op(&r, &SubKeyOp::Create { account: &acct, sub_id: "key_00000000ffffffff", key_hash: "f".repeat(64), new: &new }, &acct);
    assert_eq!(reply, SubKeyReply::TooMany(100));
    assert_eq!(block(r.command(vec![json!("EXISTS"), json!(rk::key_record("key_00000000ffffffff"))])).unwrap(), json!(0), "nothing was made");
    // An admin revokes one by id: its place is free for the next.
    block(r.key_op(&KeyOp::Revoke { key_id: &format!("key_{:016x}", 0xabc0_0000_u32 + 1000) }, 2)).unwrap();
    let reply = op(&r, &SubKeyOp::Create { account: &acct, sub_id: "key_00000000ffffffff", key_hash: "f".repeat(64), new: &new }, &acct);
    assert_eq!(reply, SubKeyReply::Ok(100));
}

#[test]
fn a_swept_sub_key_call_is_charged_its_hold_and_a_late_settlement_corrects_its_spend() {
    let r = start();
    let (acct, _) = create_key(&r, 109, 10_000);
    let (sub, hash) = sub_key(&r, &acct, 9, Caps { total: Some(5_000), ..Caps::default() }, &[]);
    let a = admit_at(&r, &hash, "req_w", 1000, fixed(800), 1).unwrap();
    block(r.settle(&Settlement::sweep("req_w", 7200, 9000, RETAIN))).unwrap();
    let f = sub_view(&r, &sub).sub.unwrap();
    assert_eq!((f.spend.total_mc, f.spend.held_mc), (800, 0));
    settle_at(&r, &a, "req_w", 200_000_000, 10_000);
    assert_eq!(sub_view(&r, &sub).sub.unwrap().spend.total_mc, 36);
    assert_ledger_invariant(&r, &acct);
}

/// `bill_v2`: a sub-key's call in flight is its own bill and its account's, never another
/// sub-key's; once settled, the same.
#[test]
fn a_sub_keys_call_in_flight_is_its_own_bill_and_its_accounts_not_a_siblings() {
    use broker_core::bills::BillReply;
    let r = start();
    let (acct, _) = create_key(&r, 121, 10_000);
    let (sub, hash) = sub_key(&r, &acct, 21, Caps::default(), &[]);
    let (sibling, _) = sub_key(&r, &acct, 22, Caps::default(), &[]);
    let (stranger, _) = create_key(&r, 122, 10_000);
    let a = admit_at(&r, &hash, "req_subbill", 1000, fixed(400), 1).unwrap();
    for who in [&sub, &acct] {
        let b = block(r.bill(who, "req_subbill")).unwrap();
        assert!(matches!(&b, BillReply::Held { hold_mc: 400, admitted_ms: 1000, .. }), "{who}: {b:?}");
    }
    for who in [&sibling, &stranger] {
        assert_eq!(block(r.bill(who, "req_subbill")).unwrap(), BillReply::Ledger(vec![]), "{who} sees nothing");
    }
    settle_at(&r, &a, "req_subbill", 200_000_000, 2000);
    for who in [&sub, &acct] {
        assert!(matches!(block(r.bill(who, "req_subbill")).unwrap(), BillReply::Ledger(es) if !es.is_empty()), "{who}: settled");
    }
    assert_eq!(block(r.bill(&sibling, "req_subbill")).unwrap(), BillReply::Ledger(vec![]));
}
