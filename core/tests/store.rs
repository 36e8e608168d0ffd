//! The money rules at the script level: the store's operations run the real Lua scripts on a real
//! `redis-server` (started here on a free 127.0.0.1 port), with the same argument builders the
//! worker uses. Needs `redis-server` on the PATH (scripts/setup installs it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::zombie_processes)] // a test file: failing loudly is the point

use broker_core::ratelimit::{RateLimit, RateLimits};
use broker_core::error::{ApiError, ErrorKind};
use broker_core::metering::{Admission, Admitted, Billing, CallMeta, FlexibleOutput, HoldPlan, Metered, Settlement, Units};
use broker_core::scripts::Retention;
use broker_core::money::CreditRate;
use broker_core::provider::Provider;
use broker_core::redis_keys as rk;
use broker_core::scripts::{ClawbackReply, CreditReply, KeyOpReply, ReadReply, Script, SettleReply};
use broker_core::store::{Clawback, Credit, CreditTarget, KeyOp, Read, Reader, Store};
use broker_core::redis_keys::StatsScope;
use broker_core::usage::Usage;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::process::{Child, Command, Stdio};

struct Redis {
    child: Child,
    conn: RefCell<redis::Connection>,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (scripts/setup installs it)");
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    for _ in 0..100 {
        if let Ok(conn) = client.get_connection() {
            return Redis { child, conn: RefCell::new(conn) };
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("redis-server did not start");
}

/// Redis replies as Upstash renders them: bulk strings as strings, integers as numbers.
fn to_json(v: redis::Value) -> Value {
    match v {
        redis::Value::Nil => Value::Null,
        redis::Value::Int(i) => json!(i),
        redis::Value::BulkString(b) => json!(String::from_utf8_lossy(&b)),
        redis::Value::SimpleString(s) => json!(s),
        redis::Value::Okay => json!("OK"),
        redis::Value::Array(a) => Value::Array(a.into_iter().map(to_json).collect()),
        other => json!(format!("{other:?}")),
    }
}

fn arg(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Store for Redis {
    async fn eval(&self, script: &Script, args: Vec<String>) -> Result<Value, ApiError> {
        let mut conn = self.conn.borrow_mut();
        let run = |cmd: &str, first: &str, conn: &mut redis::Connection| redis::cmd(cmd).arg(first).arg(0).arg(&args).query::<redis::Value>(conn);
        match run("EVALSHA", script.sha1(), &mut conn) {
            Err(e) if e.code() == Some("NOSCRIPT") => run("EVAL", script.source, &mut conn),
            other => other,
        }
        .map(to_json)
        .map_err(|e| ApiError::unavailable(format!("{}: {e}", script.name)))
    }

    async fn command(&self, args: Vec<Value>) -> Result<Value, ApiError> {
        let mut cmd = redis::cmd(&arg(&args[0]));
        for a in &args[1..] {
            cmd.arg(arg(a));
        }
        cmd.query::<redis::Value>(&mut self.conn.borrow_mut()).map(to_json).map_err(|e| ApiError::unavailable(e.to_string()))
    }

    async fn pipeline(&self, commands: Vec<Vec<Value>>) -> Result<Vec<Value>, ApiError> {
        let mut out = Vec::new();
        for c in commands {
            out.push(self.command(c).await?);
        }
        Ok(out)
    }
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

const KEEP: u64 = 10_000;
const RETAIN: Retention = Retention { ledger_keep: KEEP, stats_ttl_secs: 86_400 };
const fn keep(n: u64) -> Retention {
    Retention { ledger_keep: n, stats_ttl_secs: 86_400 }
}

fn limits() -> RateLimits {
    RateLimits::parse("pro:ai=1000/3600, pro:image=2/60, free:ai=10/3600, anonymous=5/900").unwrap()
}

fn meta() -> CallMeta {
    CallMeta { provider: Provider::OpenAi, model: "gpt-4o-mini".into(), product: "chat" }
}

/// A key with `credits_mc`; returns (key id, key hash).
fn create_key(r: &Redis, n: u32, credits_mc: i64) -> (String, String) {
    let id = format!("key_{n:016x}");
    let hash = format!("{n:064x}");
    let op = KeyOp::Create { key_id: &id, key_hash: hash.clone(), name: "t", plan: "pro", initial_mc: credits_mc, fragment: String::new(), keep: KEEP };
    assert_eq!(block(r.key_op(&op, 1)).unwrap(), KeyOpReply::Ok);
    (id, hash)
}

fn admit(r: &Redis, hash: &str, rid: &str, class: &str, hold: HoldPlan, units: u64) -> Result<Admitted, ApiError> {
    let limits = limits();
    let meta = meta();
    block(r.admit(&Admission { key_hash: hash.into(), now_ms: 1000, request_id: rid, class, client_ip: "203.0.113.7", limits: &limits, hold, units, meta: &meta, idempotency: None }))
}

fn fixed(mc: i64) -> HoldPlan {
    HoldPlan { fixed_mc: mc, flexible: None }
}

fn view(r: &Redis, id: &str) -> broker_core::scripts::KeyView {
    match block(r.read(&Read { who: Reader::Admin { key_id: id }, offset: 0, count: 1000 })).unwrap() {
        ReadReply::Found(k) => *k,
        other => panic!("{other:?}"),
    }
}

fn entries(r: &Redis, id: &str) -> Vec<Value> {
    view(r, id).entries.iter().map(|e| serde_json::from_str(e).unwrap()).collect()
}

/// balance + held == carried + Σ entries, and each entry's balance is the running sum.
fn assert_ledger_invariant(r: &Redis, id: &str) {
    let k = view(r, id);
    let es = entries(r, id);
    let sum: i64 = es.iter().map(|e| e["amount"].as_i64().unwrap()).sum();
    assert_eq!(k.balance_mc + k.held_mc, k.carried_mc + sum, "ledger invariant of {id}");
    let mut running = k.carried_mc;
    for e in es.iter().rev() {
        running += e["amount"].as_i64().unwrap();
        assert_eq!(e["balance"].as_i64().unwrap(), running, "running balance of {e}");
    }
}

fn billing(a: &Admitted, rid: &str) -> Billing {
    Billing::new(rid, CreditRate::default_rate(), a)
}

fn tokens(output: u64) -> Units {
    Units::Tokens(Usage { input: 10, output, ..Usage::default() })
}

#[test]
fn a_call_holds_then_settles_into_one_ledger_entry() {
    let r = start();
    let (id, hash) = create_key(&r, 1, 10_000);
    let a = admit(&r, &hash, "req_a", "ai", fixed(500), 24).unwrap();
    assert_eq!((a.hold_mc, a.balance_after_mc, a.granted_units), (500, 9_500, 24));
    let k = view(&r, &id);
    assert_eq!((k.balance_mc, k.held_mc), (9_500, 500), "the hold moved from spendable to held");
    assert_eq!(entries(&r, &id).len(), 1, "admission writes no ledger entry");
    // $0.0002 = 2e8 pico → 36 mc.
    let s = billing(&a, "req_a").settle(&Metered::exact(200_000_000, tokens(5)), 2000, RETAIN);
    assert_eq!(block(r.settle(&s)).unwrap(), SettleReply::Settled { charged_mc: 36, balance_mc: 9_964, watching: false });
    assert_eq!(block(r.settle(&s)).unwrap(), SettleReply::Missing, "settled once");
    let es = entries(&r, &id);
    assert_eq!(es.len(), 2);
    assert_eq!((es[0]["type"].clone(), es[0]["amount"].clone(), es[0]["hold"].clone()), (json!("call"), json!(-36), json!(500)));
    assert_eq!(es[0]["model"], "gpt-4o-mini");
    assert_eq!(es[0]["units"]["usage"]["output"], 5);
    assert_eq!(view(&r, &id).held_mc, 0);
    assert_ledger_invariant(&r, &id);
}

#[test]
fn admission_never_overdraws_and_names_what_a_call_needs() {
    let r = start();
    let (id, hash) = create_key(&r, 2, 1_000);
    let admitted = (0..10).filter(|i| admit(&r, &hash, &format!("req_{i}"), "ai", fixed(300), 1).is_ok()).count();
    assert_eq!(admitted, 3, "1000 mc covers three holds of 300");
    let e = admit(&r, &hash, "req_x", "ai", fixed(300), 1).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InsufficientCredits);
    assert_eq!(e.details.unwrap()["credits_required"], json!(0.3));
    assert_eq!(view(&r, &id).balance_mc, 100);
}

#[test]
fn without_an_output_cap_admission_grants_what_the_balance_covers() {
    let r = start();
    let (_, hash) = create_key(&r, 3, 1_000);
    // 100 mc of input, 0.5 mc per output token (500_000 micro-mc), up to 16384 tokens. The ladder
    // steps down by an eighth: 16384, 14336, 12544, 10976, 9604, 8404, 7354, 6435, 5631, 4928,
    // 4312, 3773, 3302, 2890, 2529, 2213, 1937 (100 + 969 = 1069 mc: too much), 1695 (100 + 848).
    let plan = HoldPlan { fixed_mc: 100, flexible: Some(FlexibleOutput { per_unit_micro_mc: 500_000, max_units: 16_384, min_units: 1 }) };
    let a = admit(&r, &hash, "req_f", "ai", plan, 16_384).unwrap();
    assert_eq!((a.granted_units, a.hold_mc, a.balance_after_mc), (1_695, 948, 52));
    let e = admit(&r, &hash, "req_g", "ai", plan, 16_384).unwrap_err();
    assert_eq!(e.status(), 402);
    assert_eq!(e.details.unwrap()["credits_required"], json!(0.101), "the smallest rung: 100 + ⌈0.5⌉ mc");
}

#[test]
fn each_route_class_has_its_own_window() {
    let r = start();
    let (_, hash) = create_key(&r, 4, 100_000);
    assert!(admit(&r, &hash, "i1", "image", fixed(1), 1).is_ok());
    assert!(admit(&r, &hash, "i2", "image", fixed(1), 1).is_ok());
    let e = admit(&r, &hash, "i3", "image", fixed(1), 1).unwrap_err();
    assert_eq!(e.kind, ErrorKind::RateLimited { retry_after_secs: 60 });
    assert!(e.response_headers().contains(&("ratelimit-policy".into(), "\"image\";q=2".into())));
    assert!(admit(&r, &hash, "c1", "ai", fixed(1), 1).is_ok(), "the chat window is separate");
}

#[test]
fn the_sweeper_charges_a_lost_hold_and_a_late_settlement_corrects_it_once() {
    let r = start();
    let (id, hash) = create_key(&r, 5, 10_000);
    let a = admit(&r, &hash, "req_lost", "ai", fixed(800), 24).unwrap();
    assert_eq!(block(r.open_holds_before(5000, 10)).unwrap(), vec!["req_lost".to_string()]);
    let swept = block(r.settle(&Settlement::sweep("req_lost", 7200, 9000, RETAIN))).unwrap();
    assert_eq!(swept, SettleReply::Swept { charged_mc: 800, balance_mc: 9_200 });
    assert!(block(r.open_holds_before(u64::MAX / 2, 10)).unwrap().is_empty());
    let charge = &entries(&r, &id)[0];
    assert_eq!((charge["amount"].clone(), charge["exact"].clone()), (json!(-800), json!(false)));
    assert!(charge["note"].as_str().unwrap().contains("charged the hold"));
    assert_eq!(charge["model"], "gpt-4o-mini", "the hold remembers what it was for");
    // The call's own settlement arrives: it refunds the difference, once.
    let late = billing(&a, "req_lost").settle(&Metered::exact(200_000_000, tokens(5)), 10_000, RETAIN);
    assert_eq!(block(r.settle(&late)).unwrap(), SettleReply::Corrected { refunded_mc: 764, balance_mc: 9_964, watching: false });
    assert_eq!(block(r.settle(&late)).unwrap(), SettleReply::Missing);
    assert_eq!(entries(&r, &id)[0]["type"], "correction");
    assert_eq!(view(&r, &id).charged_total_mc, 36);
    assert_ledger_invariant(&r, &id);
}

#[test]
fn a_usage_above_the_hold_is_charged_in_full_and_the_debt_refuses_admission() {
    let r = start();
    let (id, hash) = create_key(&r, 6, 10_000);
    let a = admit(&r, &hash, "req_o", "ai", fixed(100), 1).unwrap();
    // $0.07 = 7e10 pico → 12.6 credits = 12,600 mc, 12,500 above the hold of 100.
    let s = billing(&a, "req_o").settle(&Metered::exact(70_000_000_000, tokens(9)), 2, RETAIN);
    assert_eq!(block(r.settle(&s)).unwrap(), SettleReply::Settled { charged_mc: 12_600, balance_mc: -2_600, watching: false });
    let e = &entries(&r, &id)[0];
    assert_eq!((e["amount"].clone(), e["hold"].clone()), (json!(-12_600), json!(100)));
    assert_eq!(e["hold_exceeded"], json!({"hold_mc": 100, "charged_mc": 12_600, "over_mc": 12_500}));
    assert_eq!(admit(&r, &hash, "req_p", "ai", fixed(1), 1).unwrap_err().status(), 402, "a debt is not spendable");
    // A swept call whose exact usage comes to more than its hold: the correction charges the rest.
    let grant = Credit { target: CreditTarget::KeyId(id.clone()), amount_mc: 10_000, now_ms: 3, kind: "grant", fragment: String::new(), retention: RETAIN, payment: None, dedupe: vec![] };
    assert!(matches!(block(r.credit(&grant)).unwrap(), CreditReply::Credited { balance_mc: 7_400, .. }));
    let a = admit(&r, &hash, "req_q", "ai", fixed(200), 1).unwrap();
    block(r.settle(&Settlement::sweep("req_q", 7200, 3, RETAIN))).unwrap();
    let late = billing(&a, "req_q").settle(&Metered::exact(5_000_000_000, tokens(3)), 4, RETAIN);
    assert_eq!(block(r.settle(&late)).unwrap(), SettleReply::Corrected { refunded_mc: -700, balance_mc: 6_500, watching: false }, "900 mc used, 200 held: 700 more");
    let days = broker_core::stats::days("1970-01-01", "1970-01-01").unwrap();
    let (calls, payments) = block(r.stats_rollups(&days, &StatsScope::All)).unwrap();
    let report = broker_core::stats::report(&days, &calls, &payments, &broker_core::money::Decimal::parse("0.01").unwrap(), None, broker_core::stats::View::Admin);
    let row = &report["days"][0]["models"][0];
    assert_eq!(row["model"], "openai/gpt-4o-mini");
    assert_eq!(row["hold_exceeded"], json!({"calls": 2, "held_mc": 300, "charged_mc": 13_500}));
    assert_ledger_invariant(&r, &id);
}

#[test]
fn money_stays_exact_with_balances_up_to_2_pow_53() {
    let r = start();
    let (id, hash) = create_key(&r, 13, 0);
    // 2^53 − 2^20 mc: every figure below must come back to the unit.
    let big: i64 = 9_007_199_253_692_416;
    assert!(matches!(topup(&r, &id, big, "pi_big", "evt_big"), CreditReply::Credited { balance_mc: 9_007_199_253_692_416, .. }));
    let hold: i64 = 9_007_199_253_692_415;
    let a = admit(&r, &hash, "req_big", "ai", fixed(hold), 1).unwrap();
    assert_eq!((a.hold_mc, a.balance_after_mc), (hold, 1));
    // A flexible hold on what is left: one mc covers nothing, so it is refused, exactly.
    let plan = HoldPlan { fixed_mc: 1, flexible: Some(FlexibleOutput { per_unit_micro_mc: 1_000_001, max_units: 128_000, min_units: 1 }) };
    assert_eq!(admit(&r, &hash, "req_f", "ai", plan, 128_000).unwrap_err().details.unwrap()["credits_required"], json!(0.003), "1 + ⌈1.000001⌉ mc");
    // Charged an odd figure close to the hold: 50,039,995,853,846,005,555,555 pico-USD × 1.8 /
    // 0.01 = 9,007,199,253,692,280.9999999 mc → 9,007,199,253,692,281.
    let s = billing(&a, "req_big").settle(&Metered::exact(50_039_995_853_846_005_555_555, tokens(1)), 2, RETAIN);
    assert_eq!(s.charge_mc, 9_007_199_253_692_281);
    assert_eq!(block(r.settle(&s)).unwrap(), SettleReply::Settled { charged_mc: 9_007_199_253_692_281, balance_mc: 135, watching: false });
    assert_ledger_invariant(&r, &id);

    // A purchase of 2^52 + 2 mc refunded 200,001 of 300,001 cents: ⌈4,503,599,627,370,498 ×
    // 200,001 / 300,001⌉ = 3,002,404,755,563,239 (doubles give ...238).
    let (id2, _) = create_key(&r, 14, 0);
    let a2: i64 = 4_503_599_627_370_498;
    topup(&r, &id2, a2, "pi_share", "evt_share");
    assert_eq!(refund(&r, "pi_share", "evt_share_r", 200_001, 300_001), ClawbackReply::Taken { key_id: id2.clone(), taken_mc: 3_002_404_755_563_239, balance_mc: 1_501_194_871_807_259 });
    // The rest of the payment refunded later: the difference, to the unit.
    assert!(matches!(refund(&r, "pi_share", "evt_share_r2", 300_001, 300_001), ClawbackReply::Taken { taken_mc: 1_501_194_871_807_259, balance_mc: 0, .. }));
    assert_ledger_invariant(&r, &id2);
    // The same refund before its purchase: the share is taken when the purchase is credited.
    let (id3, _) = create_key(&r, 15, 0);
    assert_eq!(refund(&r, "pi_early", "evt_early_r", 200_001, 300_001), ClawbackReply::Pending);
    let CreditReply::Credited { balance_mc, early_refund_mc, .. } = topup(&r, &id3, a2, "pi_early", "evt_early") else { panic!() };
    assert_eq!((early_refund_mc, balance_mc), (3_002_404_755_563_239, 1_501_194_871_807_259));
    assert_ledger_invariant(&r, &id3);
}

fn topup(r: &Redis, id: &str, mc: i64, pi: &str, event: &str) -> CreditReply {
    let c = Credit {
        target: CreditTarget::KeyId(id.to_string()),
        amount_mc: mc,
        now_ms: 5,
        kind: "topup",
        fragment: String::new(),
        retention: RETAIN,
        payment: Some((rk::stripe_payment(pi), rk::stripe_early_refund(pi))),
        dedupe: vec![rk::stripe_event(event)],
    };
    block(r.credit(&c)).unwrap()
}

fn refund(r: &Redis, pi: &str, event: &str, refunded: u64, paid: u64) -> ClawbackReply {
    let c = Clawback {
        payment_marker: rk::stripe_payment(pi),
        early_refund_key: rk::stripe_early_refund(pi),
        refunded_cents: refunded,
        paid_cents: paid,
        now_ms: 6,
        fragment: String::new(),
        event_marker: rk::stripe_event(event),
        retention: RETAIN,
    };
    block(r.clawback(&c)).unwrap()
}

#[test]
fn a_refund_takes_back_credits_that_open_calls_hold() {
    let r = start();
    let (id, hash) = create_key(&r, 7, 0);
    assert!(matches!(topup(&r, &id, 2_000_000, "pi_1", "evt_1"), CreditReply::Credited { .. }));
    assert!(matches!(topup(&r, &id, 2_000_000, "pi_1", "evt_1b"), CreditReply::Duplicate { .. }), "one payment credits once");
    let a = admit(&r, &hash, "req_big", "ai", fixed(1_500_000), 24).unwrap();
    // The whole $20 is refunded while the call holds 1500 of its 2000 credits.
    assert_eq!(refund(&r, "pi_1", "evt_r1", 2000, 2000), ClawbackReply::Taken { key_id: id.clone(), taken_mc: 2_000_000, balance_mc: -1_500_000 });
    assert_eq!(refund(&r, "pi_1", "evt_r1", 2000, 2000), ClawbackReply::Duplicate);
    // The call settles for less than it held: what comes back pays part of the debt only.
    block(r.settle(&billing(&a, "req_big").settle(&Metered::exact(1_000_000_000, tokens(1)), 7, RETAIN))).unwrap();
    assert_eq!(view(&r, &id).balance_mc, -180, "nothing of the refunded amount is left to spend");
    let e = admit(&r, &hash, "req_next", "ai", fixed(1), 1).unwrap_err();
    assert_eq!(e.status(), 402);
    assert!(e.message.contains("owes"), "{}", e.message);
    assert_ledger_invariant(&r, &id);
}

#[test]
fn a_refund_before_its_purchase_nets_to_zero_and_later_refunds_take_the_difference() {
    let r = start();
    let (id, _) = create_key(&r, 8, 0);
    assert_eq!(refund(&r, "pi_2", "evt_r", 500, 2000), ClawbackReply::Pending);
    assert_eq!(refund(&r, "pi_2", "evt_r", 500, 2000), ClawbackReply::Duplicate);
    let CreditReply::Credited { balance_mc, early_refund_mc, .. } = topup(&r, &id, 2_000_000, "pi_2", "evt_p") else { panic!() };
    assert_eq!((early_refund_mc, balance_mc), (500_000, 1_500_000), "a quarter was refunded before the purchase arrived");
    // A later, cumulative refund of the whole payment takes only the rest.
    assert!(matches!(refund(&r, "pi_2", "evt_r2", 2000, 2000), ClawbackReply::Taken { taken_mc: 1_500_000, balance_mc: 0, .. }));
    let types: Vec<Value> = entries(&r, &id).iter().map(|e| e["type"].clone()).collect();
    assert_eq!(types, vec![json!("refund"), json!("refund"), json!("topup")]);
    assert_ledger_invariant(&r, &id);
}

#[test]
fn payment_markers_outlive_event_markers() {
    let r = start();
    let (id, _) = create_key(&r, 9, 0);
    topup(&r, &id, 1000, "pi_3", "evt_3");
    let ttl = |k: String| block(r.command(vec![json!("TTL"), json!(k)])).unwrap().as_i64().unwrap();
    assert_eq!(ttl(rk::stripe_payment("pi_3")), -1, "a payment can be refunded or disputed months later");
    assert!(ttl(rk::stripe_event("evt_3")) > 80 * 86_400);
}

#[test]
fn the_ledger_keeps_the_newest_entries_and_carries_the_rest() {
    let r = start();
    let (id, hash) = create_key(&r, 10, 100_000);
    for i in 0..12 {
        let rid = format!("req_{i}");
        let a = admit(&r, &hash, &rid, "ai", fixed(50), 1).unwrap();
        block(r.settle(&billing(&a, &rid).settle(&Metered::exact(10_000_000, tokens(1)), 10 + i, keep(5)))).unwrap();
    }
    let k = view(&r, &id);
    assert_eq!(k.ledger_len, 5, "one entry per call, the newest LEDGER_KEEP kept");
    assert_eq!(k.carried_mc, 100_000 - 7 * 2, "the grant and seven calls folded into the carried total");
    assert_ledger_invariant(&r, &id);
}

#[test]
fn unknown_keys_count_against_the_address() {
    let r = start();
    for i in 0..5 {
        let e = admit(&r, "nope", &format!("u{i}"), "ai", fixed(1), 1).unwrap_err();
        assert_eq!(e.status(), 401);
    }
    let e = admit(&r, "nope", "u6", "ai", fixed(1), 1).unwrap_err();
    assert_eq!(e.status(), 429);
    let anon = RateLimit { limit: 5, window_ms: 900_000 };
    let read = Read { who: Reader::Customer { key_hash: "nope".into(), client_ip: "203.0.113.7", anonymous: anon, now_ms: 1000, request_id: "r" }, offset: 0, count: 0 };
    assert!(matches!(block(r.read(&read)).unwrap(), ReadReply::Unknown { limited: true, .. }), "reads share the window");
}

#[test]
fn the_analytics_agree_with_the_ledger() {
    let r = start();
    let (id, hash) = create_key(&r, 11, 0);
    topup(&r, &id, 2_000_000, "pi_s", "evt_s");
    let mut costs = 0;
    for (i, cost) in [150_000_000u128, 2_000_000_000, 7].into_iter().enumerate() {
        let rid = format!("req_s{i}");
        let a = admit(&r, &hash, &rid, "ai", fixed(1_000), 1).unwrap();
        let m = Metered::exact(cost, tokens(3 + i as u64));
        costs += broker_core::metering::micro_usd(m.cost_pico_usd);
        block(r.settle(&billing(&a, &rid).settle(&m, 1000, RETAIN))).unwrap();
    }
    // A swept call, then its exact settlement.
    let a = admit(&r, &hash, "req_sw", "ai", fixed(900), 1).unwrap();
    block(r.settle(&Settlement::sweep("req_sw", 7200, 2000, RETAIN))).unwrap();
    block(r.settle(&billing(&a, "req_sw").settle(&Metered::exact(50_000_000, tokens(2)), 3000, RETAIN))).unwrap();
    costs += 50;
    refund(&r, "pi_s", "evt_rs", 100, 2000);
    let days = broker_core::stats::days("1970-01-01", "1970-01-01").unwrap();
    let upc = broker_core::money::Decimal::parse("0.01").unwrap();
    let (calls, payments) = block(r.stats_rollups(&days, &StatsScope::Key(id.clone()))).unwrap();
    let report = broker_core::stats::report(&days, &calls, &payments, &upc, Some(&id), broker_core::stats::View::Admin);
    let es = entries(&r, &id);
    let charged: i64 = -es.iter().filter(|e| e["type"] == "call" || e["type"] == "correction").map(|e| e["amount"].as_i64().unwrap()).sum::<i64>();
    let units: u64 = es.iter().filter_map(|e| e["units"]["usage"].as_object()).map(|u| u.values().filter_map(Value::as_u64).sum::<u64>()).sum();
    let t = &report["totals"];
    assert_eq!(t["charged_mc"].as_i64().unwrap(), charged, "credits charged");
    assert_eq!(t["calls"], 4);
    assert_eq!(t["units"].as_u64().unwrap(), units);
    assert_eq!(t["cost_usd_micro"].as_u64().unwrap(), costs);
    let ledger_cost: u64 = es.iter().filter_map(|e| e["cost_usd_micro"].as_u64()).sum();
    assert_eq!(ledger_cost, costs, "the ledger's costs, entry by entry");
    let pay = &report["days"][0]["payments"];
    assert_eq!(pay["topup"]["mc"], 2_000_000);
    assert_eq!(pay["refund"]["mc"], -100_000);
    // The all-keys rollup counts the same calls.
    let (all, _) = block(r.stats_rollups(&days, &StatsScope::All)).unwrap();
    assert_eq!(broker_core::stats::report(&days, &all, &payments, &upc, None, broker_core::stats::View::Admin)["totals"]["charged_mc"].as_i64().unwrap(), charged);
}

#[test]
fn a_subscription_moves_a_key_between_plans_and_only_its_own_end_returns_it() {
    let r = start();
    let (id, _) = create_key(&r, 12, 0);
    let op = |o: KeyOp| block(r.key_op(&o, 1)).unwrap();
    assert_eq!(op(KeyOp::Subscribe { key_id: &id, plan: "pro", subscription_id: "sub_1", customer: "cus_1" }), KeyOpReply::Ok);
    let k = view(&r, &id);
    assert_eq!((k.plan.as_str(), k.subscription.as_str(), k.stripe_customer.as_str()), ("pro", "sub_1", "cus_1"));
    // A renewal under a new subscription, then a late deletion of the old one: nothing changes.
    assert_eq!(op(KeyOp::Subscribe { key_id: &id, plan: "pro", subscription_id: "sub_2", customer: "" }), KeyOpReply::Ok);
    assert_eq!(op(KeyOp::Unsubscribe { key_id: &id, plan: "free", subscription_id: "sub_1" }), KeyOpReply::OtherSubscription);
    assert_eq!(view(&r, &id).plan, "pro");
    assert_eq!(op(KeyOp::Unsubscribe { key_id: &id, plan: "free", subscription_id: "sub_2" }), KeyOpReply::Ok);
    let k = view(&r, &id);
    assert_eq!((k.plan.as_str(), k.subscription.as_str(), k.stripe_customer.as_str()), ("free", "", "cus_1"), "the customer stays for the Billing Portal");
}

#[test]
fn a_customer_rotation_needs_the_current_key_so_a_leaked_old_key_loses_the_race() {
    let r = start();
    let (id, old_hash) = create_key(&r, 13, 0);
    let op = |o: KeyOp| block(r.key_op(&o, 1)).unwrap();
    // The owner rotates first; the leaked old key's rotation, checked against its own hash, fails.
    let owners = "b".repeat(64);
    assert_eq!(op(KeyOp::Rotate { key_id: &id, new_hash: owners.clone(), current_hash: Some(old_hash.clone()) }), KeyOpReply::Ok);
    assert_eq!(op(KeyOp::Rotate { key_id: &id, new_hash: "c".repeat(64), current_hash: Some(old_hash) }), KeyOpReply::Stale);
    let owner_of = |h: &str| block(r.command(vec![json!("GET"), json!(format!("abk:keyhash:{h}"))])).unwrap();
    assert_eq!(owner_of(&owners), json!(id), "the owner's new key works");
    assert_eq!(owner_of(&"c".repeat(64)), Value::Null, "the leaked key got no new key");
    // An admin rotation needs no current key.
    assert_eq!(op(KeyOp::Rotate { key_id: &id, new_hash: "d".repeat(64), current_hash: None }), KeyOpReply::Ok);
}

#[test]
fn the_rapidapi_channel_limits_by_plan_and_records_cost_without_credits() {
    use broker_core::rapidapi::{RapidAdmission, RapidSettlement};
    let r = start();
    let limits = RateLimits::parse("free:ai=2/3600, pro:ai=100/3600, anonymous=5/900").unwrap();
    let admit = |user: &str, rid: &str, plan: &str| block(r.rapid_admit(&RapidAdmission { user, now_ms: 1000, request_id: rid, class: "ai", plan, limits: &limits }));
    assert_eq!(admit("u1", "r1", "free").unwrap().remaining, 1);
    assert_eq!(admit("u1", "r2", "free").unwrap().remaining, 0);
    assert_eq!(admit("u1", "r3", "free").unwrap_err().status(), 429, "the free plan's window is full");
    assert!(admit("u2", "r4", "free").is_ok(), "each RapidAPI user has a window of their own");
    assert_eq!(admit("u1", "r5", "gold").unwrap_err().status(), 403);
    for (user, cost) in [("u1", 150), ("u1", 50), ("u2", 7)] {
        let s = RapidSettlement { user: user.into(), plan: "BASIC".into(), now_ms: 1000, label: "openai/gpt-4o-mini".into(), units: 12, cost_usd_micro: cost, retention: RETAIN };
        block(r.rapid_settle(&s)).unwrap();
    }
    let days = broker_core::stats::days("1970-01-01", "1970-01-01").unwrap();
    let upc = broker_core::money::Decimal::parse("0.01").unwrap();
    let totals = |scope: StatsScope| {
        let (calls, payments) = block(r.stats_rollups(&days, &scope)).unwrap();
        broker_core::stats::report(&days, &calls, &payments, &upc, None, broker_core::stats::View::Admin)["totals"].clone()
    };
    let u1 = totals(StatsScope::RapidUser("u1".into()));
    assert_eq!((u1["calls"].as_u64(), u1["cost_usd_micro"].as_u64(), u1["charged_mc"].as_i64()), (Some(2), Some(200), Some(0)));
    assert_eq!(totals(StatsScope::RapidPlan("BASIC".into()))["cost_usd_micro"], 207, "150 + 50 + 7");
    assert_eq!(totals(StatsScope::All)["calls"], 3, "the all-callers rollup counts RapidAPI calls too");
}

// Payments taken back: PayPal refunds and reversals, Stripe disputes, in any order with their
// purchase. Every expected figure is computed here from the amounts paid.

use broker_core::disputes::{self, DisputeEvent};
use broker_core::paypal::Refund;
use broker_core::paypal_credits;
use broker_core::scripts::{DisputeReply, DisputeState};
use broker_core::store::DisputeStep;

/// A PayPal capture of `cents` for the key, credited at $0.01 a credit.
fn capture(r: &Redis, id: &str, capture_id: &str, event: &str, cents: u64) -> CreditReply {
    block(r.credit(&paypal_credits::credit(event, capture_id, id, cents as i64 * 1000, cents, 5, RETAIN))).unwrap()
}

/// A PayPal refund event: `total_cents` refunded from the capture so far.
fn paypal_refund(r: &Redis, capture_id: &str, event: &str, total_cents: u64, reversal: bool) -> ClawbackReply {
    let refund = Refund { event_id: event.into(), capture_id: capture_id.into(), refund_id: format!("R-{event}"), refunded_cents: total_cents, target_mc: total_cents as i64 * 1000, reversal };
    block(r.clawback(&paypal_credits::clawback(&refund, 6, RETAIN))).unwrap()
}

#[test]
fn paypal_refunds_take_back_what_was_refunded_so_far_once_each() {
    let r = start();
    let (id, hash) = create_key(&r, 20, 0);
    assert!(matches!(capture(&r, &id, "CAP20", "WH-c", 2000), CreditReply::Credited { balance_mc: 2_000_000, .. }));
    assert!(matches!(capture(&r, &id, "CAP20", "WH-c2", 2000), CreditReply::Duplicate { .. }), "one capture credits once");
    // $5.00 refunded: 500 credits.
    assert_eq!(paypal_refund(&r, "CAP20", "WH-r1", 500, false), ClawbackReply::Taken { key_id: id.clone(), taken_mc: 500_000, balance_mc: 1_500_000 });
    assert_eq!(paypal_refund(&r, "CAP20", "WH-r1", 500, false), ClawbackReply::Duplicate);
    // A call holds 1000 credits; another $10.00 is refunded ($15.00 so far): 1000 more are taken.
    let a = admit(&r, &hash, "req_pp", "ai", fixed(1_000_000), 1).unwrap();
    assert_eq!(paypal_refund(&r, "CAP20", "WH-r2", 1500, false), ClawbackReply::Taken { key_id: id.clone(), taken_mc: 1_000_000, balance_mc: -500_000 });
    // The rest is reversed ($20.00 in all): the last 500, a debt while the call holds its credits.
    assert_eq!(paypal_refund(&r, "CAP20", "WH-v", 2000, true), ClawbackReply::Taken { key_id: id.clone(), taken_mc: 500_000, balance_mc: -1_000_000 });
    // $0.0002 → 36 mc charged; the hold's rest comes back against the debt.
    block(r.settle(&billing(&a, "req_pp").settle(&Metered::exact(200_000_000, tokens(1)), 7, RETAIN))).unwrap();
    assert_eq!(view(&r, &id).balance_mc, -36, "everything bought was taken back; the call's cost is owed");
    assert_eq!(paypal_refund(&r, "CAP20", "WH-v2", 2500, true), ClawbackReply::Taken { key_id: id.clone(), taken_mc: 0, balance_mc: -36 }, "never more than the capture credited");
    assert_ledger_invariant(&r, &id);
}

#[test]
fn a_paypal_refund_before_its_capture_is_taken_when_the_capture_is_credited() {
    let r = start();
    let (id, _) = create_key(&r, 21, 0);
    assert_eq!(paypal_refund(&r, "CAP21", "WH-r", 700, false), ClawbackReply::Pending);
    assert_eq!(paypal_refund(&r, "CAP21", "WH-r", 700, false), ClawbackReply::Duplicate);
    let CreditReply::Credited { balance_mc, early_refund_mc, .. } = capture(&r, &id, "CAP21", "WH-c", 2000) else { panic!() };
    assert_eq!((early_refund_mc, balance_mc), (700_000, 1_300_000));
    // A later refund totalling $20.00 takes only the rest.
    assert_eq!(paypal_refund(&r, "CAP21", "WH-r2", 2000, false), ClawbackReply::Taken { key_id: id.clone(), taken_mc: 1_300_000, balance_mc: 0 });
    assert_ledger_invariant(&r, &id);
}

fn stripe_topup(r: &Redis, id: &str, mc: i64, pi: &str, event: &str, paid_cents: u64) -> (CreditReply, Vec<(String, DisputeReply)>) {
    let c = Credit {
        target: CreditTarget::KeyId(id.to_string()),
        amount_mc: mc,
        now_ms: 5,
        kind: "topup",
        fragment: String::new(),
        retention: RETAIN,
        payment: Some((rk::stripe_payment(pi), rk::stripe_early_refund(pi))),
        dedupe: vec![rk::stripe_event(event)],
    };
    block(disputes::credit_payment(r, &c, Some(pi), paid_cents, event)).unwrap()
}

fn dispute(r: &Redis, dp: &str, pi: &str, cents: u64, step: DisputeStep) -> DisputeReply {
    let ev = DisputeEvent { event_id: "evt_d", dispute_id: dp, payment_intent: pi, disputed_cents: cents, step, now_ms: 8, retention: RETAIN };
    block(disputes::apply(r, &ev)).unwrap()
}

fn applied(state: DisputeState, id: &str, moved_mc: i64, balance_mc: i64) -> DisputeReply {
    DisputeReply::Applied { state, key_id: id.into(), moved_mc, balance_mc }
}

#[test]
fn a_dispute_freezes_the_disputed_credits_until_it_is_won() {
    let r = start();
    let (id, hash) = create_key(&r, 22, 0);
    stripe_topup(&r, &id, 2_000_000, "pi_22", "evt_p", 2000);
    assert_eq!(dispute(&r, "dp_22", "pi_22", 2000, DisputeStep::Freeze), applied(DisputeState::Frozen, &id, -2_000_000, 0));
    assert_eq!(admit(&r, &hash, "req_d", "ai", fixed(1), 1).unwrap_err().status(), 402, "frozen credits cannot be spent");
    // Replays, and the funds_withdrawn that follows created, freeze nothing more.
    assert_eq!(dispute(&r, "dp_22", "pi_22", 2000, DisputeStep::Freeze), DisputeReply::Duplicate { state: "frozen".into() });
    assert_eq!(dispute(&r, "dp_22", "pi_22", 2000, DisputeStep::Release), applied(DisputeState::Released, &id, 2_000_000, 2_000_000));
    // Won is final: funds_reinstated, a replayed close or a late "lost" change nothing.
    assert_eq!(dispute(&r, "dp_22", "pi_22", 2000, DisputeStep::Release), DisputeReply::Duplicate { state: "released".into() });
    assert_eq!(dispute(&r, "dp_22", "pi_22", 2000, DisputeStep::Lose), DisputeReply::Duplicate { state: "released".into() });
    assert_eq!(view(&r, &id).balance_mc, 2_000_000);
    let types: Vec<Value> = entries(&r, &id).iter().map(|e| e["type"].clone()).collect();
    assert_eq!(types, vec![json!("dispute_won"), json!("dispute"), json!("topup")]);
    assert_ledger_invariant(&r, &id);
    // The admins' payments report counts them.
    let days = broker_core::stats::days("1970-01-01", "1970-01-01").unwrap();
    let upc = broker_core::money::Decimal::parse("0.01").unwrap();
    let (calls, payments) = block(r.stats_rollups(&days, &StatsScope::All)).unwrap();
    let pay = &broker_core::stats::report(&days, &calls, &payments, &upc, None, broker_core::stats::View::Admin)["days"][0]["payments"];
    assert_eq!((pay["dispute"]["mc"].clone(), pay["dispute_won"]["mc"].clone(), pay["topup"]["mc"].clone()), (json!(-2_000_000), json!(2_000_000), json!(2_000_000)));
}

#[test]
fn a_lost_dispute_keeps_its_share_and_spent_credits_become_a_debt() {
    let r = start();
    let (id, hash) = create_key(&r, 23, 0);
    // 1500 credits bought for $24.00 (tax included); $10.00 of it disputed: 625 credits.
    stripe_topup(&r, &id, 1_500_000, "pi_23", "evt_p", 2400);
    let a = admit(&r, &hash, "req_l", "ai", fixed(1_200_000), 1).unwrap();
    // $5.00 → 900 credits (5 × 1.8 / 0.01).
    block(r.settle(&billing(&a, "req_l").settle(&Metered::exact(5_000_000_000_000, tokens(1)), 7, RETAIN))).unwrap();
    assert_eq!(view(&r, &id).balance_mc, 600_000);
    assert_eq!(dispute(&r, "dp_23", "pi_23", 1000, DisputeStep::Freeze), applied(DisputeState::Frozen, &id, -625_000, -25_000));
    assert_eq!(dispute(&r, "dp_23", "pi_23", 1000, DisputeStep::Lose), applied(DisputeState::Lost, &id, 0, -25_000));
    assert_eq!(dispute(&r, "dp_23", "pi_23", 1000, DisputeStep::Release), DisputeReply::Duplicate { state: "lost".into() }, "lost is final");
    assert_eq!(entries(&r, &id)[0]["type"], "dispute_lost");
    assert_ledger_invariant(&r, &id);
}

#[test]
fn disputes_before_their_purchase_apply_when_it_is_credited_in_any_order() {
    let r = start();
    let (id, _) = create_key(&r, 24, 0);
    // Created, then lost, both before the purchase; a late replay of created does not undo the loss.
    assert_eq!(dispute(&r, "dp_24", "pi_24", 2000, DisputeStep::Freeze), DisputeReply::Pending);
    assert_eq!(dispute(&r, "dp_24", "pi_24", 2000, DisputeStep::Lose), DisputeReply::Pending);
    assert_eq!(dispute(&r, "dp_24", "pi_24", 2000, DisputeStep::Freeze), DisputeReply::Pending);
    let (credit, early) = stripe_topup(&r, &id, 2_000_000, "pi_24", "evt_p", 2000);
    assert!(matches!(credit, CreditReply::Credited { balance_mc: 2_000_000, .. }));
    assert_eq!(early, vec![("dp_24".to_string(), applied(DisputeState::Lost, &id, -2_000_000, 0))]);
    // Stripe retries the purchase event: nothing more.
    let (credit, early) = stripe_topup(&r, &id, 2_000_000, "pi_24", "evt_p", 2000);
    assert!(matches!(credit, CreditReply::Duplicate { .. }) && early.is_empty());
    assert_eq!(view(&r, &id).balance_mc, 0);
    // A dispute created before its purchase and won after it.
    let (id2, _) = create_key(&r, 25, 0);
    assert_eq!(dispute(&r, "dp_25", "pi_25", 500, DisputeStep::Freeze), DisputeReply::Pending);
    let (_, early) = stripe_topup(&r, &id2, 2_000_000, "pi_25", "evt_p25", 2000);
    assert_eq!(early, vec![("dp_25".to_string(), applied(DisputeState::Frozen, &id2, -500_000, 1_500_000))]);
    assert_eq!(dispute(&r, "dp_25", "pi_25", 500, DisputeStep::Release), applied(DisputeState::Released, &id2, 500_000, 2_000_000));
    assert_ledger_invariant(&r, &id);
    assert_ledger_invariant(&r, &id2);
}

#[test]
fn a_dispute_step_on_a_payment_credited_since_it_was_read_is_retried() {
    let r = start();
    let (id, _) = create_key(&r, 26, 0);
    stripe_topup(&r, &id, 1_000, "pi_26", "evt_p", 100);
    let stale = broker_core::store::Dispute {
        dispute_id: "dp_26".into(),
        payment_intent: "pi_26".into(),
        expected_marker: String::new(),
        step: DisputeStep::Freeze,
        amount_mc: 0,
        disputed_cents: 100,
        now_ms: 8,
        fragment: String::new(),
        retention: RETAIN,
    };
    assert_eq!(block(r.dispute(&stale)).unwrap(), DisputeReply::Retry, "read before the credit, applied after it");
    assert_eq!(view(&r, &id).balance_mc, 1_000);
    assert_eq!(dispute(&r, "dp_26", "pi_26", 100, DisputeStep::Freeze), applied(DisputeState::Frozen, &id, -1_000, 0));
    assert_ledger_invariant(&r, &id);
}

// The scripts' names, and the admin flows of broker_core::admin on the real scripts.

#[test]
fn each_script_is_known_to_redis_by_the_sha1_the_gateway_sends() {
    // EVALSHA falls back to EVAL on NOSCRIPT, so a wrong SHA-1 would cost a round trip on every
    // call without failing one: Redis's own SCRIPT LOAD answer is the figure to agree with.
    let r = start();
    for s in broker_core::scripts::ALL {
        let sha = block(r.command(vec![json!("SCRIPT"), json!("LOAD"), json!(s.source)])).unwrap();
        assert_eq!(sha, json!(s.sha1()), "{}", s.name);
    }
}

/// A request's platform, as plain values: ids count up, secrets and log lines are collected.
struct TestCall {
    settings: broker_core::config::Settings,
    counter: std::cell::Cell<u64>,
    secrets: RefCell<Vec<String>>,
}

impl broker_core::call::Call for TestCall {
    fn now_ms(&self) -> u64 {
        1_000
    }
    fn request_id(&self) -> &str {
        "req_admin"
    }
    fn client_ip(&self) -> &str {
        "203.0.113.9"
    }
    fn settings(&self) -> &broker_core::config::Settings {
        &self.settings
    }
    fn random_hex(&self, n: usize) -> Result<String, ApiError> {
        self.counter.set(self.counter.get() + 1);
        Ok(format!("{:0width$x}", self.counter.get(), width = n * 2))
    }
    fn keep_secret(&self, value: &str) {
        self.secrets.borrow_mut().push(value.to_string());
    }
    fn log(&self, _msg: &str, _fields: serde_json::Map<String, Value>) {}
}

fn test_call() -> TestCall {
    TestCall { settings: broker_core::config::settings_from(&|_| None).unwrap(), counter: Default::default(), secrets: Default::default() }
}

fn body(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn add_credits_by_plaintext_creates_the_key_once_and_an_adjustment_never_creates_one() {
    use broker_core::admin;
    let (r, call) = (start(), test_call());
    let first = block(admin::add_credits(&r, &call, &body(json!({"apiKey": "test-key-123", "credits": 50})))).unwrap();
    assert_eq!((first["created"].as_bool(), first["credits"].as_i64()), (Some(true), Some(50)));
    assert!(call.secrets.borrow().contains(&"test-key-123".to_string()), "the plaintext is kept out of the log");
    let again = block(admin::add_credits(&r, &call, &body(json!({"apiKey": "test-key-123", "credits": 25.5})))).unwrap();
    assert_eq!((again["key_id"].clone(), again["credits"].as_f64()), (first["key_id"].clone(), Some(75.5)), "50 + 25.5");
    let e = block(admin::add_credits(&r, &call, &body(json!({"apiKey": "never-seen-key", "credits": -5})))).unwrap_err();
    assert_eq!(e.status(), 404);
    assert_eq!(block(admin::add_credits(&r, &call, &body(json!({"apiKey": "short", "credits": 5})))).unwrap_err().status(), 400);
}

#[test]
fn the_import_takes_each_original_balance_once() {
    use broker_core::admin;
    let (r, call) = (start(), test_call());
    for (k, v) in [("user:legacy-key-one:credits", "12.5"), ("user:legacy-key-two:credits", "0"), ("user:tiny:credits", "9")] {
        block(r.command(vec![json!("SET"), json!(k), json!(v)])).unwrap();
    }
    let mut imported = Vec::new();
    let mut skipped = 0;
    for _ in 0..2 {
        let mut cursor = json!("0");
        loop {
            let page = block(admin::import_keys(&r, &call, &body(json!({"cursor": cursor, "count": 1})))).unwrap();
            imported.extend(page["imported"].as_array().unwrap().iter().cloned());
            skipped += page["skipped"].as_array().unwrap().len();
            if page["next_cursor"].is_null() {
                break;
            }
            cursor = page["next_cursor"].clone();
        }
    }
    assert_eq!(imported.len(), 1, "one positive balance, imported once over two runs: {imported:?}");
    assert_eq!(imported[0]["credits"], 12.5);
    assert_eq!(skipped, 5, "per run: the zero balance, the short key; the second run also the imported one");
    let id = imported[0]["key_id"].as_str().unwrap().to_string();
    let es = entries(&r, &id);
    assert_eq!(es.iter().map(|e| e["amount"].as_i64().unwrap()).sum::<i64>(), 12_500, "the ledger holds the import");
    assert_ledger_invariant(&r, &id);
}

/// `bill_v2` (GET /v1/requests/{id}): a call's open hold, then its ledger entries, for its own
/// key only, through a sweep and the late settlement that corrects it.
#[test]
fn a_calls_bill_follows_it_from_hold_to_sweep_to_correction_for_its_key_only() {
    use broker_core::bills::{bill_json, BillReply};
    let r = start();
    let (id, hash) = create_key(&r, 31, 10_000);
    let (other, _) = create_key(&r, 32, 10_000);
    let a = admit(&r, &hash, "req_bill", "ai", fixed(800), 24).unwrap();
    let held = block(r.bill(&id, "req_bill")).unwrap();
    assert!(matches!(&held, BillReply::Held { hold_mc: 800, admitted_ms: 1000, .. }), "{held:?}");
    assert_eq!(bill_json("req_bill", &held).unwrap()["model"], "gpt-4o-mini");
    assert_eq!(block(r.bill(&other, "req_bill")).unwrap(), BillReply::Ledger(vec![]), "another key sees nothing");
    block(r.settle(&Settlement::sweep("req_bill", 7200, 9000, RETAIN))).unwrap();
    let swept = bill_json("req_bill", &block(r.bill(&id, "req_bill")).unwrap()).unwrap();
    assert_eq!((swept["status"].as_str(), swept["charged_mc"].as_i64(), swept["admitted_ts"].as_i64()), (Some("swept"), Some(800), Some(1000)));
    // $0.0002 = 2e8 pico → 36 mc; the correction refunds 764.
    let late = billing(&a, "req_bill").settle(&Metered::exact(200_000_000, tokens(5)), 10_000, RETAIN);
    block(r.settle(&late)).unwrap();
    let b = bill_json("req_bill", &block(r.bill(&id, "req_bill")).unwrap()).unwrap();
    assert_eq!((b["status"].as_str(), b["charged_mc"].as_i64(), b["held_mc"].as_i64(), b["exact"].as_bool()), (Some("settled"), Some(36), Some(800), Some(true)));
    assert_eq!((b["settled_ts"].as_i64(), b["corrected_ts"].as_i64()), (Some(9000), Some(10_000)));
    assert_eq!(block(r.bill(&other, "req_bill")).unwrap(), BillReply::Ledger(vec![]));
}

// Idempotency-Key (issue 24): its own file.
#[path = "store/idempotency.rs"]
mod idempotency;

// Sub-keys (issue 25): their own file.
#[path = "store/subkeys.rs"]
mod sub_keys;
