//! `Idempotency-Key` at the script level (issue 24): `admit_v6` checks and claims a key's record
//! in the admission round trip, `settle_v6` closes it. The real scripts on redis-server.

use super::*;
use broker_core::idempotency::{Claim, Found, StoredAnswer};
use broker_core::scripts::AdmitReply;

fn admit_with(r: &Redis, hash: &str, rid: &str, hold: HoldPlan, claim: &Claim) -> Result<Result<Admitted, broker_core::idempotency::Replay>, ApiError> {
    let limits = limits();
    let meta = meta();
    block(r.admit_call(&Admission { key_hash: hash.into(), now_ms: 1000, request_id: rid, class: "ai", client_ip: "203.0.113.7", limits: &limits, hold, units: 24, meta: &meta, idempotency: Some(claim) }))
}

fn raw_admit(r: &Redis, hash: &str, rid: &str, claim: &Claim) -> AdmitReply {
    let limits = limits();
    let meta = meta();
    let a = Admission { key_hash: hash.into(), now_ms: 1000, request_id: rid, class: "ai", client_ip: "203.0.113.7", limits: &limits, hold: fixed(500), units: 24, meta: &meta, idempotency: Some(claim) };
    AdmitReply::decode(&block(r.eval(&broker_core::scripts::ADMIT, a.argv())).unwrap()).unwrap()
}

fn cmd(r: &Redis, args: &[&str]) -> Value {
    block(r.command(args.iter().map(|a| json!(a)).collect())).unwrap()
}

fn idem_billing(a: &Admitted, rid: &str) -> Billing {
    billing(a, rid).with_controls(None, true)
}

#[test]
fn a_claimed_key_is_in_flight_until_settled_then_replayed_and_never_charged_twice() {
    let r = start();
    let (id, hash) = create_key(&r, 40, 10_000);
    let claim = Claim::new("order-1", "/v1/chat", b"{}");
    let a = admit_with(&r, &hash, "req_1", fixed(500), &claim).unwrap().unwrap();
    let record = rk::idempotency(&id, &claim.key_hash);
    assert_eq!(cmd(&r, &["HGET", &record, "rid"]), json!("req_1"));
    assert_eq!(cmd(&r, &["TTL", &record]), json!(86_400));
    assert_eq!(cmd(&r, &["GET", &rk::idempotency_of("req_1")]), json!(record));
    // In flight (also after the answer went out, until the settlement lands): 409, nothing held.
    assert_eq!(raw_admit(&r, &hash, "req_2", &claim), AdmitReply::Idempotent(Found::InFlight { request_id: "req_1".into() }));
    let e = admit_with(&r, &hash, "req_2", fixed(500), &claim).unwrap_err();
    assert_eq!((e.status(), e.kind.type_name()), (409, "idempotency_in_flight"));
    assert_eq!(view(&r, &id).held_mc, 500, "only the first call's hold");
    // Another body: 422.
    let other = Claim::new("order-1", "/v1/chat", b"{\"x\":1}");
    assert_eq!(admit_with(&r, &hash, "req_3", fixed(500), &other).unwrap_err().status(), 422);
    // Settled with its answer kept: the retry is a replay of it.
    let answer = StoredAnswer { status: 200, content_type: "application/json".into(), headers: vec![("x-credits-charged".into(), "0.036".into())], body: b"{\"ok\":true}".to_vec() };
    let mut s = idem_billing(&a, "req_1").settle(&Metered::exact(200_000_000, tokens(5)), 2000, RETAIN);
    s.idempotency.keep(&answer);
    assert_eq!(block(r.settle(&s)).unwrap(), SettleReply::Settled { charged_mc: 36, balance_mc: 9_964, watching: false });
    let replay = admit_with(&r, &hash, "req_4", fixed(500), &claim).unwrap().unwrap_err();
    assert_eq!((replay.request_id.as_str(), &replay.answer), ("req_1", &answer));
    assert_eq!(view(&r, &id).balance_mc, 9_964, "the replay held and charged nothing");
    assert_eq!(view(&r, &id).held_mc, 0);
    assert_ledger_invariant(&r, &id);
    assert_eq!(entries(&r, &id).iter().filter(|e| e["type"] == "call").count(), 1);
    // The same header on another key is another record.
    let (_, hash2) = create_key(&r, 41, 10_000);
    assert!(admit_with(&r, &hash2, "req_5", fixed(500), &claim).unwrap().is_ok());
}

#[test]
fn a_refused_or_released_call_leaves_the_key_usable() {
    let r = start();
    let (id, hash) = create_key(&r, 42, 100);
    let claim = Claim::new("k", "/v1/chat", b"{}");
    // 402: nothing claimed.
    assert_eq!(admit_with(&r, &hash, "req_1", fixed(500), &claim).unwrap_err().status(), 402);
    assert_eq!(cmd(&r, &["EXISTS", &rk::idempotency(&id, &claim.key_hash)]), json!(0));
    // Admitted, then released (the provider refused): removed.
    admit_with(&r, &hash, "req_2", fixed(50), &claim).unwrap().unwrap();
    assert_eq!(block(r.settle(&Billing::release("req_2", "the provider answered 500", 2000, RETAIN))).unwrap(), SettleReply::Settled { charged_mc: 0, balance_mc: 100, watching: false });
    assert_eq!(cmd(&r, &["EXISTS", &rk::idempotency(&id, &claim.key_hash)]), json!(0));
    assert_eq!(cmd(&r, &["EXISTS", &rk::idempotency_of("req_2")]), json!(0));
    assert!(admit_with(&r, &hash, "req_3", fixed(50), &claim).unwrap().is_ok(), "the retry runs");
    assert_ledger_invariant(&r, &id);
}

#[test]
fn a_streamed_or_swept_call_keeps_its_request_id_and_charge_only() {
    let r = start();
    let (id, hash) = create_key(&r, 43, 10_000);
    let claim = Claim::new("s", "/v1/chat", b"{}");
    let a = admit_with(&r, &hash, "req_s", fixed(500), &claim).unwrap().unwrap();
    // Streamed: settled with no answer kept.
    block(r.settle(&idem_billing(&a, "req_s").settle(&Metered::exact(200_000_000, tokens(5)), 2000, RETAIN))).unwrap();
    let e = admit_with(&r, &hash, "req_t", fixed(500), &claim).unwrap_err();
    assert_eq!((e.status(), e.kind.type_name()), (409, "idempotency_key_used"));
    assert_eq!(e.details.unwrap(), json!({"idempotent_request_id": "req_s", "credits_charged": 0.036}));
    // A call whose settlement never came: the sweeper's charge closes its record with the hold.
    let lost = Claim::new("lost", "/v1/chat", b"{}");
    admit_with(&r, &hash, "req_lost", fixed(800), &lost).unwrap().unwrap();
    block(r.settle(&Settlement::sweep("req_lost", 7200, 9000, RETAIN))).unwrap();
    assert_eq!(raw_admit(&r, &hash, "req_u", &lost), AdmitReply::Idempotent(Found::Done { request_id: "req_lost".into(), charged_mc: 800, answer: None }));
    assert_ledger_invariant(&r, &id);
}
