//! A metered call's money controls (issue 24), read from its request before anything else:
//! its spending cap ([`crate::spend_cap`]) and its `Idempotency-Key` ([`crate::idempotency`]).
//! The worker passes the request's headers and body; the route parses the body this returns
//! (`max_credits` taken out).

use crate::error::ApiError;
use crate::idempotency::{self, Claim};
use crate::spend_cap;

/// What the client set for this call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallControls {
    /// The most the call may hold and be charged (mc), from `X-Max-Credits` and `max_credits`
    /// (the smaller when both are given).
    pub cap_mc: Option<i64>,
    pub idempotency: Option<Claim>,
}

impl CallControls {
    /// Reads the controls of a call to `route` (its path and query, as received): `header`
    /// looks a request header up by its lower-case name. Returns the body the route parses.
    pub fn read(header: impl Fn(&str) -> Option<String>, route: &str, body: Vec<u8>) -> Result<(CallControls, Vec<u8>), ApiError> {
        let from_header = spend_cap::parse_header(header(spend_cap::HEADER).as_deref())?;
        // The fingerprint is of the body as sent (with its `max_credits`, if any).
        let idempotency = idempotency::parse(header(idempotency::HEADER).as_deref())?.map(|k| Claim::new(&k, route, &body));
        let (from_body, stripped) = spend_cap::take_field(&body)?;
        let controls = CallControls { cap_mc: spend_cap::combine(from_header, from_body), idempotency };
        Ok((controls, stripped.unwrap_or(body)))
    }

    /// RapidAPI bills its own users: no credits to cap, no key to scope an idempotency key to.
    pub fn check_rapidapi(&self) -> Result<(), ApiError> {
        if self.idempotency.is_some() || self.cap_mc.is_some() {
            return Err(ApiError::invalid("`Idempotency-Key` and `X-Max-Credits` / `max_credits` apply to calls paid with a key's credits, not to RapidAPI calls"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(h: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| h.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn reads_the_cap_and_the_key_and_hands_back_the_body_without_the_field() {
        let body = br#"{"model":"m","max_credits":"0.5"}"#.to_vec();
        let (c, rest) = CallControls::read(headers(&[("x-max-credits", "0.2"), ("idempotency-key", "k-1")]), "/v1/chat", body.clone()).unwrap();
        assert_eq!(c.cap_mc, Some(200), "the smaller of the two");
        assert_eq!(rest, br#"{"model":"m"}"#);
        assert_eq!(c.idempotency.unwrap(), Claim::new("k-1", "/v1/chat", &body));
        let (c, rest) = CallControls::read(headers(&[]), "/v1/chat", b"{}".to_vec()).unwrap();
        assert_eq!((c, rest), (CallControls::default(), b"{}".to_vec()));
        assert!(CallControls::default().check_rapidapi().is_ok());
    }

    #[test]
    fn a_bad_control_is_a_400_naming_it() {
        let e = CallControls::read(headers(&[("x-max-credits", "0")]), "/v1/chat", b"{}".to_vec()).unwrap_err();
        assert!(e.message.contains("X-Max-Credits"));
        let e = CallControls::read(headers(&[("idempotency-key", "a b")]), "/v1/chat", b"{}".to_vec()).unwrap_err();
        assert!(e.message.contains("Idempotency-Key"));
        let e = CallControls::read(headers(&[]), "/v1/chat", br#"{"max_credits":-1}"#.to_vec()).unwrap_err();
        assert!(e.message.contains("max_credits"));
        let (c, _) = CallControls::read(headers(&[("idempotency-key", "k")]), "/v1/chat", b"{}".to_vec()).unwrap();
        assert_eq!(c.check_rapidapi().unwrap_err().status(), 400);
    }
}
