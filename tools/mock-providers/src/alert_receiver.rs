//! A customer's alert receiver (the HTTPS endpoint a `PUT /v1/alerts` names), for the tests:
//! `POST /alerts/<name>` records each delivery (headers and the exact body) and answers 200, or
//! the status a test asked for: `POST /__control/alerts/<name> {fail_next, status?}` makes the
//! next `fail_next` deliveries answer `status` (default 500). `GET /__control/alerts/<name>`
//! lists the deliveries, oldest first, each with the status it was answered.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{json, Value};

use crate::http::{Request, Response};

#[derive(Default)]
struct Receiver {
    received: Vec<Value>,
    fail_next: u64,
    fail_status: u16,
}

fn receivers() -> std::sync::MutexGuard<'static, HashMap<String, Receiver>> {
    static R: OnceLock<Mutex<HashMap<String, Receiver>>> = OnceLock::new();
    R.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

pub fn receive(name: &str, req: &Request) -> Response {
    let mut all = receivers();
    let r = all.entry(name.to_string()).or_default();
    let status = if r.fail_next > 0 {
        r.fail_next -= 1;
        if r.fail_status == 0 { 500 } else { r.fail_status }
    } else {
        200
    };
    let headers: serde_json::Map<String, Value> = req.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    r.received.push(json!({ "method": req.method, "headers": headers, "body": req.body_str(), "status": status }));
    Response::json(status, &json!({ "received": status == 200 }))
}

pub fn control(name: &str, body: &Value) -> Response {
    let mut all = receivers();
    let r = all.entry(name.to_string()).or_default();
    r.fail_next = body.get("fail_next").and_then(Value::as_u64).unwrap_or(0);
    r.fail_status = body.get("status").and_then(Value::as_u64).and_then(|s| u16::try_from(s).ok()).unwrap_or(500);
    Response::json(200, &json!({ "ok": true }))
}

pub fn received(name: &str) -> Response {
    let all = receivers();
    let list = all.get(name).map(|r| r.received.clone()).unwrap_or_default();
    Response::json(200, &json!({ "data": list }))
}
