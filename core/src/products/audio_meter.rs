//! The meter of an audio answer (speech, music): the provider's bytes go to the client as they
//! arrive, unchanged, with the provider's content type; nothing is buffered.
//!
//! The charge is known as soon as the provider answers 2xx, before the first byte: ElevenLabs
//! and OpenAI bill the characters of a generation that started (ElevenLabs says how many
//! credits in its `character-cost` header), Stability bills a generation that succeeded. So the
//! head of the answer carries the exact charge, and a body that breaks off afterwards is still
//! charged in full (the provider billed it). The client cannot be told in-band that audio is
//! incomplete, so such a stream is ended with an error rather than closed: a cut file is never
//! taken for a whole one.

use crate::error::{ApiError, ErrorKind};
use crate::metering::Metered;
use crate::money::{credits_json, credits_string};
use crate::payer::Bill;
use crate::product::{End, Finish, Meter, ProviderHead, StreamHead, WholeAnswer};
use serde_json::json;

/// Prices a call from the provider's 2xx head (its cost headers, if any).
pub type PriceAtHead = Box<dyn FnOnce(&ProviderHead) -> Metered>;

pub struct AudioMeter {
    billing: Bill,
    /// The provider, for messages.
    provider: &'static str,
    price: Option<PriceAtHead>,
    metered: Option<Metered>,
    content_type: String,
    bytes: u64,
}

impl AudioMeter {
    pub fn new(billing: Bill, provider: &'static str, price: PriceAtHead) -> AudioMeter {
        AudioMeter { billing, provider, price: Some(price), metered: None, content_type: String::new(), bytes: 0 }
    }

    fn charge_headers(&self) -> Vec<(String, String)> {
        match &self.metered {
            Some(m) => self.billing.credit_headers(&self.billing.charge(m.cost_pico_usd)),
            None => Vec::new(),
        }
    }
}

/// Whether a content type is audio (what the audio routes may pass on).
fn is_audio(ct: &str) -> bool {
    let ct = ct.trim().to_ascii_lowercase();
    ct.starts_with("audio/") || ct.starts_with("application/octet-stream")
}

impl Meter for AudioMeter {
    fn stream_head(&self) -> Option<StreamHead> {
        let mut headers = self.charge_headers();
        headers.push(("cache-control".into(), "no-store".into()));
        Some(StreamHead { content_type: self.content_type.clone(), headers })
    }

    fn start(&mut self, head: &ProviderHead) -> Result<(), ApiError> {
        match head.header("content-type") {
            Some(ct) if is_audio(ct) => self.content_type = ct.to_string(),
            other => return Err(ApiError::upstream(format!("{} answered `{}` instead of audio", self.provider, other.unwrap_or("no content type")))),
        }
        if let Some(price) = self.price.take() {
            self.metered = Some(price(head));
        }
        Ok(())
    }

    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.bytes += chunk.len() as u64;
        chunk.to_vec()
    }

    fn finish(&mut self, end: End) -> Finish {
        let metered = match (self.metered.take(), &end, self.bytes) {
            (None, _, _) | (_, End::Complete, 0) => {
                // No audio at all: nothing billable was served.
                let e = ApiError::upstream(format!("{} answered without any audio; nothing was charged", self.provider)).public();
                return Finish { tail: Vec::new(), answer: Err(e), metered: None };
            }
            (Some(m), _, _) => m,
        };
        let charge = self.billing.charge(metered.cost_pico_usd);
        if end == End::Complete {
            // The client has had every byte as it came; this whole answer is only used when the
            // client never got a stream (it left before the first byte).
            let answer = WholeAnswer { status: 200, content_type: self.content_type.clone(), headers: self.charge_headers(), body: Vec::new() };
            return Finish { tail: Vec::new(), answer: Ok(answer), metered: Some(metered) };
        }
        let why = format!("{} after {} bytes of audio; the provider bills a generation that started, so it is charged in full", end.describe(), self.bytes);
        let note = Some(metered.note.as_ref().map_or(why.clone(), |n| format!("{n}; {why}")));
        let kind = if end == End::IdleTimeout { ErrorKind::UpstreamTimeout } else { ErrorKind::UpstreamError };
        let e = ApiError::new(kind, format!("the audio broke off ({}); billed {} credits, since {} bills a generation that started", end.describe(), credits_string(charge.charged_mc), self.provider))
            .public()
            .with_details(json!({ "credits_charged": credits_json(charge.charged_mc) }));
        Finish { tail: Vec::new(), answer: Err(e), metered: Some(Metered { exact: metered.exact, note, ..metered }) }
    }

    fn abort_client_stream(&self, end: &End) -> bool {
        *end != End::Complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::{Admitted, Billing, Units};
    use crate::money::CreditRate;
    use crate::ratelimit::RateState;

    fn meter() -> AudioMeter {
        let admitted = Admitted { sub_key: None, key_id: "key_1".into(), plan: "pro".into(), hold_mc: 540, balance_after_mc: 9460, granted_units: 10, rate: RateState { limit: 1, remaining: 0, reset_ms: 1 }, class: "media".into() };
        let billing = Billing::new("req_a", CreditRate::default_rate(), &admitted);
        // 10 characters at $0.0003 each.
        AudioMeter::new(billing.into(), "elevenlabs", Box::new(|_h: &ProviderHead| Metered::exact(3_000_000_000, Units::Characters(10))))
    }

    fn head(ct: &str) -> ProviderHead {
        ProviderHead { status: 200, headers: vec![("content-type".into(), ct.into())] }
    }

    #[test]
    fn bytes_pass_unchanged_and_the_head_carries_the_charge() {
        let mut m = meter();
        m.start(&head("audio/mpeg")).unwrap();
        let h = m.stream_head().unwrap();
        assert_eq!(h.content_type, "audio/mpeg");
        assert!(h.headers.contains(&("x-credits-charged".into(), "0.54".into())));
        assert!(h.headers.contains(&("x-credits-remaining".into(), "9.46".into())));
        assert_eq!(m.push(b"ID3\x04\xff\xfb"), b"ID3\x04\xff\xfb");
        let f = m.finish(End::Complete);
        assert!(f.answer.is_ok() && f.tail.is_empty());
        assert!(f.metered.unwrap().exact);
        assert!(!m.abort_client_stream(&End::Complete));
    }

    #[test]
    fn a_body_that_breaks_off_is_charged_and_the_stream_is_cut() {
        let mut m = meter();
        m.start(&head("audio/mpeg")).unwrap();
        m.push(&[0xff; 417]);
        let end = End::Broken("connection reset".into());
        assert!(m.abort_client_stream(&end));
        let f = m.finish(end);
        let e = f.answer.unwrap_err();
        assert_eq!((e.status(), e.details.unwrap()["credits_charged"].clone()), (502, json!(0.54)));
        let metered = f.metered.unwrap();
        assert_eq!(metered.cost_pico_usd, 3_000_000_000);
        assert!(metered.note.unwrap().contains("after 417 bytes of audio"));
    }

    #[test]
    fn a_stall_before_any_audio_is_charged_too_but_an_empty_answer_is_not() {
        let mut m = meter();
        m.start(&head("audio/mpeg")).unwrap();
        let f = m.finish(End::IdleTimeout);
        assert_eq!(f.answer.unwrap_err().status(), 504);
        assert!(f.metered.is_some(), "the provider started the generation");
        let mut m = meter();
        m.start(&head("audio/mpeg")).unwrap();
        let f = m.finish(End::Complete);
        assert_eq!(f.answer.unwrap_err().status(), 502);
        assert!(f.metered.is_none(), "no audio at all: released");
    }

    #[test]
    fn a_body_that_is_not_audio_is_refused_before_any_charge() {
        let mut m = meter();
        assert_eq!(m.start(&head("application/json")).unwrap_err().status(), 502);
        assert!(m.start(&head("application/octet-stream")).is_ok());
    }
}
