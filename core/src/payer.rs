//! Who pays for a metered call, and each payer kind's own books. Two kinds:
//!
//! - **a customer's key**: prepaid credits, held at admission and charged at settlement
//!   ([`crate::metering::Billing`], the `admit_v6`/`settle_v6` store operations);
//! - **RapidAPI for one of its users** ([`crate::rapidapi`]): RapidAPI bills its own user, so
//!   nothing is held or charged and the answers carry no credit figures; the call is limited by
//!   its subscription's rate plan and its provider cost goes to the analytics (`rapid_v1`).
//!
//! The engine admits a call with [`Payer::admit`], hands the products the [`Bill`] (what the
//! answers say about the payment), and closes the call with the [`Closing`] the bill gives.
//! Only this module tells the kinds apart; `metering` is about credits only.

use crate::controls::CallControls;
use crate::error::{ApiError, ErrorKind};
use crate::idempotency::Replay;
use crate::metering::{Admission, Admitted, Billing, CallMeta, Charge, HoldPlan, Metered, Settlement};
use crate::money::{credits_json, credits_string, CreditRate};
use crate::rapidapi::{self, RapidAdmission, RapidCall, RapidSettlement};
use crate::ratelimit::RateLimits;
use crate::scripts::{Retention, SettleReply};
use crate::store::Store;
use serde_json::{json, Map, Value};

/// Who pays for a call, as the request names it. No `Debug`: it carries a plaintext key.
pub enum Payer {
    /// A customer's API key (plaintext: only its hash reaches the store).
    Key(String),
    /// A RapidAPI user on a RapidAPI subscription, limited by that subscription's rate plan.
    RapidApi { user: String, subscription: String, rate_plan: String },
}

/// What admission knows of a call, whoever pays.
#[derive(Debug, Clone)]
pub struct CallFacts<'a> {
    pub now_ms: u64,
    pub request_id: &'a str,
    /// The rate-limit class of the route.
    pub class: &'a str,
    pub client_ip: &'a str,
    pub limits: &'a RateLimits,
    pub hold: HoldPlan,
    /// The output cap when the hold is fixed.
    pub units: u64,
    pub meta: &'a CallMeta,
    pub rate: CreditRate,
    pub retention: Retention,
    /// The client's spending cap and idempotency key (issue 24); `hold` is already capped.
    pub controls: &'a CallControls,
}

/// A refused admission: the error the client sees, and, when the store's answer was lost (the
/// script may have held credits), the release to apply in the background.
#[derive(Debug)]
pub struct Refused {
    pub error: ApiError,
    pub release: Option<Closing>,
    /// A retry with a known `Idempotency-Key`: the first call's answer, given back instead of
    /// `error` (nothing run, held or charged).
    pub replay: Option<Replay>,
}

impl Payer {
    /// Admits the call on the payer's own books: the key's limits and hold, or the RapidAPI
    /// subscription's limits with nothing held.
    pub async fn admit<S: Store>(self, store: &S, c: &CallFacts<'_>) -> Result<(Admitted, Bill), Refused> {
        match self {
            Payer::Key(api_key) => {
                let admission = Admission {
                    key_hash: crate::keys::hash_key(&api_key),
                    now_ms: c.now_ms,
                    request_id: c.request_id,
                    class: c.class,
                    client_ip: c.client_ip,
                    limits: c.limits,
                    hold: c.hold,
                    units: c.units,
                    meta: c.meta,
                    idempotency: c.controls.idempotency.as_ref(),
                };
                match store.admit_call(&admission).await {
                    Ok(Ok(admitted)) => {
                        let billing = Billing::new(c.request_id, c.rate, &admitted).with_controls(c.controls.cap_mc, c.controls.idempotency.is_some());
                        Ok((admitted, Bill::from(billing)))
                    }
                    Ok(Err(replay)) => {
                        let error = ApiError::internal("a replay is an answer");
                        Err(Refused { error, release: None, replay: Some(replay) })
                    }
                    Err(error) => {
                        // The script may have run and its answer got lost: release whatever it held
                        // (and the idempotency key it may have claimed).
                        let lost = error.kind == ErrorKind::Unavailable;
                        let release = lost.then(|| Closing::Credits(Billing::release(c.request_id, "the admission's answer was lost", c.now_ms, c.retention)));
                        Err(Refused { error, release, replay: None })
                    }
                }
            }
            Payer::RapidApi { user, subscription, rate_plan } => {
                c.controls.check_rapidapi().map_err(|error| Refused { error, release: None, replay: None })?;
                let admission = RapidAdmission { user: &user, now_ms: c.now_ms, request_id: c.request_id, class: c.class, plan: &rate_plan, limits: c.limits };
                let rate = store.rapid_admit(&admission).await.map_err(|error| Refused { error, release: None, replay: None })?;
                let admitted = rapidapi::admitted(rate, &user, &rate_plan, c.class, c.hold, c.units);
                let call = RapidCall { user, subscription, label: c.meta.label() };
                Ok((admitted, Bill { request_id: c.request_id.to_string(), account: Account::RapidApi(call) }))
            }
        }
    }
}

/// A metered call's bill as its answers show it: the request id every answer names, and whose
/// books the call goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Bill {
    pub request_id: String,
    pub account: Account,
}

/// Whose books an admitted call goes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Account {
    /// The key's credits: the hold and the charge.
    Credits(Billing),
    /// The analytics of a RapidAPI user and subscription.
    RapidApi(RapidCall),
}

impl From<Billing> for Bill {
    fn from(billing: Billing) -> Bill {
        Bill { request_id: billing.request_id.clone(), account: Account::Credits(billing) }
    }
}

/// Who bills a RapidAPI call, as its answers say it instead of credit figures.
const BILLED_BY_RAPIDAPI: &str = "rapidapi";

impl Bill {
    /// The credits side, when the key's credits pay.
    pub fn credits(&self) -> Option<&Billing> {
        match &self.account {
            Account::Credits(b) => Some(b),
            Account::RapidApi(_) => None,
        }
    }

    /// The charge for a metered cost (nothing when RapidAPI bills).
    pub fn charge(&self, cost_pico_usd: u128) -> Charge {
        self.credits().map_or(Charge { charged_mc: 0, remaining_mc: 0, over_hold_mc: 0 }, |b| b.charge(cost_pico_usd))
    }

    /// What admission held (nothing when RapidAPI bills).
    pub fn hold_mc(&self) -> i64 {
        self.credits().map_or(0, |b| b.hold_mc)
    }

    /// The `x_broker` object added to answers in the providers' own formats.
    pub fn broker_json(&self, c: &Charge) -> Value {
        match self.credits() {
            Some(b) => b.broker_json(c),
            None => json!({ "request_id": self.request_id, "billed_by": BILLED_BY_RAPIDAPI }),
        }
    }

    /// The head of a streamed answer (see [`Billing::pending_headers`]); none when RapidAPI bills.
    pub fn pending_headers(&self) -> Vec<(String, String)> {
        self.credits().map_or_else(Vec::new, Billing::pending_headers)
    }

    /// The charge in the gateway's own answers (`/v1/chat`): the credit figures, or who bills.
    pub fn native_fields(&self, c: &Charge) -> Map<String, Value> {
        match self.credits() {
            Some(b) => b.native_fields(c),
            None => Map::from_iter([("billed_by".to_string(), json!(BILLED_BY_RAPIDAPI))]),
        }
    }

    /// The credit headers of a whole answer (none when RapidAPI bills).
    pub fn credit_headers(&self, c: &Charge) -> Vec<(String, String)> {
        self.credits().map_or_else(Vec::new, |b| b.credit_headers(c))
    }

    /// The error of a call sent and never answered: what it was charged, when credits pay.
    pub fn head_timeout_error(&self, why: &str, charged_mc: i64) -> ApiError {
        match self.credits() {
            None => ApiError::new(ErrorKind::UpstreamTimeout, why).public(),
            Some(_) => ApiError::new(ErrorKind::UpstreamTimeout, format!("{why}; charged {} credits, the hold, since the provider may have done the work", credits_string(charged_mc)))
                .public()
                .with_details(json!({ "credits_charged": credits_json(charged_mc) })),
        }
    }

    /// The log facts of the payer kind (the credits' are the engine's own).
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        match &self.account {
            Account::Credits(_) => Vec::new(),
            Account::RapidApi(r) => vec![("channel", "rapidapi".to_string()), ("rapidapi_subscription", r.subscription.clone())],
        }
    }

    /// The closing of a metered call.
    pub fn settle(&self, m: &Metered, now_ms: u64, retention: Retention) -> Closing {
        match &self.account {
            Account::Credits(b) => Closing::Credits(b.settle(m, now_ms, retention)),
            Account::RapidApi(r) => Closing::RapidApi(r.settlement(m.units.count(), crate::metering::micro_usd(m.cost_pico_usd), now_ms, retention)),
        }
    }

    /// The closing of a call whose usage can never be known (see [`Billing::charge_hold`]):
    /// nothing to record when RapidAPI bills (nothing was held, no cost is known).
    pub fn charge_hold(&self, why: &str, now_ms: u64, retention: Retention) -> Closing {
        match &self.account {
            Account::Credits(b) => Closing::Credits(b.charge_hold(why, now_ms, retention)),
            Account::RapidApi(_) => Closing::RapidApi(None),
        }
    }

    /// The closing of a call never served: its hold released.
    pub fn release(&self, why: &str, now_ms: u64, retention: Retention) -> Closing {
        match &self.account {
            Account::Credits(_) => Closing::Credits(Billing::release(&self.request_id, why, now_ms, retention)),
            Account::RapidApi(_) => Closing::RapidApi(None),
        }
    }
}

/// A call's last step on its payer's books, applied by the engine and retried on an outage.
/// `settle_v6` is idempotent per request id; `rapid_v1 settle` is not: a retry after a lost answer
/// may count the call twice in RapidAPI's analytics (no money moves there).
#[derive(Debug, Clone, PartialEq)]
pub enum Closing {
    /// `settle_v6`: the charge and the call's ledger entry.
    Credits(Settlement),
    /// `rapid_v1 settle`: a served call into the analytics; `None` when there is nothing to
    /// record.
    RapidApi(Option<RapidSettlement>),
}

/// What a closing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Credits(SettleReply),
    RapidApi { cost_usd_micro: u64 },
    Nothing,
}

impl Closing {
    /// Millicredits this closing charges.
    pub fn charge_mc(&self) -> i64 {
        match self {
            Closing::Credits(s) => s.charge_mc,
            Closing::RapidApi(_) => 0,
        }
    }

    pub async fn apply<S: Store>(&self, store: &S) -> Result<Recorded, ApiError> {
        match self {
            Closing::Credits(s) => store.settle(s).await.map(Recorded::Credits),
            Closing::RapidApi(None) => Ok(Recorded::Nothing),
            Closing::RapidApi(Some(r)) => store.rapid_settle(r).await.map(|()| Recorded::RapidApi { cost_usd_micro: r.cost_usd_micro }),
        }
    }

    /// What a closing that never lands leaves behind.
    pub fn when_lost(&self) -> &'static str {
        match self {
            Closing::Credits(_) => "failed: the sweeper will charge the hold",
            Closing::RapidApi(_) => "failed: the call is missing from the RapidAPI analytics",
        }
    }
}

#[cfg(test)]
#[path = "payer_tests.rs"]
mod tests;
