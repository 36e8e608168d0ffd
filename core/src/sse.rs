//! Incremental Server-Sent Events parser.
//!
//! Fed arbitrary byte chunks (a UTF-8 character or a line ending may be split across chunks),
//! it yields whole events with their raw bytes, so a stream can be passed through byte-exact and
//! only the events that matter (usage) are decoded. Accepts `\n`, `\r\n` (Gemini) and `\r`.
//!
//! [`SseParser::feed`] is the streaming path: events are borrowed from the chunk itself (only an
//! event split across chunks is copied, once), so a provider chunk costs no allocation per event.

use std::borrow::Cow;

/// One event, borrowed from the bytes it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseRef<'a> {
    /// The event exactly as received, terminator included.
    pub raw: &'a [u8],
    /// The `event:` field, if any.
    pub event: Option<&'a str>,
    /// The `data:` lines joined with `\n` (borrowed when there is one).
    pub data: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The event exactly as received, terminator included.
    pub raw: Vec<u8>,
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes and returns every event they complete.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = find_event_end(&self.buf) {
            let raw: Vec<u8> = self.buf.drain(..end).collect();
            if let Some(ev) = decode(raw) {
                out.push(ev);
            }
        }
        out
    }

    /// Adds bytes and calls `f` with every event they complete, borrowed from the chunk (or,
    /// for an event split across chunks, from the buffer that joined it).
    pub fn feed(&mut self, chunk: &[u8], mut f: impl FnMut(SseRef<'_>)) {
        if self.buf.is_empty() {
            let used = each_event(chunk, &mut f);
            self.buf.extend_from_slice(&chunk[used..]);
        } else {
            self.buf.extend_from_slice(chunk);
            let buf = std::mem::take(&mut self.buf);
            let used = each_event(&buf, &mut f);
            self.buf = buf;
            self.buf.drain(..used);
        }
    }

    /// Bytes of an event not complete yet.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Whatever is left when the stream ends without a final blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if self.buf.is_empty() {
            return None;
        }
        let raw = std::mem::take(&mut self.buf);
        decode(raw)
    }
}

/// Index just past the blank line that ends the first complete event.
fn find_event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    let mut line_start = true;
    while i < buf.len() {
        // Jump to the next line ending (most of an event is its data line).
        match buf[i..].iter().position(|b| *b == b'\r' || *b == b'\n') {
            Some(0) => {}
            Some(n) => {
                i += n;
                line_start = false;
            }
            None => return None,
        }
        let term = if buf[i] == b'\r' {
            match buf.get(i + 1) {
                Some(b'\n') => 2,
                Some(_) => 1,
                None => return None, // a lone \r at the end may still become \r\n
            }
        } else {
            1
        };
        if line_start {
            return Some(i + term);
        }
        line_start = true;
        i += term;
    }
    None
}

/// Calls `f` with each complete event of `bytes`; returns the bytes used.
fn each_event(bytes: &[u8], f: &mut impl FnMut(SseRef<'_>)) -> usize {
    let mut at = 0;
    while let Some(len) = find_event_end(&bytes[at..]) {
        f(decode_ref(&bytes[at..at + len]));
        at += len;
    }
    at
}

/// One event's fields, borrowed (a payload that is not UTF-8 is decoded lossily, as [`decode`]).
/// A field value as text (lossy when it is not UTF-8).
fn text(v: &[u8]) -> Cow<'_, str> {
    std::str::from_utf8(v).map_or_else(|_| Cow::Owned(String::from_utf8_lossy(v).into_owned()), Cow::Borrowed)
}

fn decode_ref(raw: &[u8]) -> SseRef<'_> {
    // Lines split on bytes (a char-wise split decodes every character); only field values are
    // checked as UTF-8.
    let mut event = None;
    let mut data: Option<Cow<'_, str>> = None;
    for line in raw.split(|b| *b == b'\n' || *b == b'\r') {
        if line.is_empty() || line[0] == b':' {
            continue;
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => (&line[..i], line[i + 1..].strip_prefix(b" ").unwrap_or(&line[i + 1..])),
            None => (line, &b""[..]),
        };
        match field {
            b"event" => {
                if let Cow::Borrowed(v) = text(value) {
                    event = Some(v);
                }
            }
            b"data" => {
                data = Some(match data {
                    None => text(value),
                    Some(d) => Cow::Owned(format!("{d}\n{}", text(value))),
                })
            }
            _ => {}
        }
    }
    SseRef { raw, event, data: data.unwrap_or(Cow::Borrowed("")) }
}

fn decode(raw: Vec<u8>) -> Option<SseEvent> {
    let text = String::from_utf8_lossy(&raw).into_owned();
    let mut event = None;
    let mut data: Vec<&str> = Vec::new();
    let mut any_field = false;
    for line in text.split(['\n', '\r']) {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        any_field = true;
        match field {
            "event" => event = Some(value.to_string()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if !any_field && raw.iter().all(|b| *b == b'\n' || *b == b'\r') {
        // A stray blank line: keep it in the raw stream but it is not an event.
        return Some(SseEvent { raw, event: None, data: String::new() });
    }
    Some(SseEvent { raw, event, data: data.join("\n") })
}

/// Encodes one event the way OpenAI and the gateway's own streams do.
pub fn encode_data(data: &str) -> Vec<u8> {
    format!("data: {data}\n\n").into_bytes()
}

/// Encodes one named event (Anthropic style).
pub fn encode_event(event: &str, data: &str) -> Vec<u8> {
    format!("event: {event}\ndata: {data}\n\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_events_across_arbitrary_chunks() {
        let stream = b"data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";
        for cut in 1..stream.len() {
            let mut p = SseParser::new();
            let mut evs = p.push(&stream[..cut]);
            evs.extend(p.push(&stream[cut..]));
            let data: Vec<_> = evs.iter().map(|e| e.data.as_str()).collect();
            assert_eq!(data, vec!["{\"a\":1}", "{\"b\":2}", "[DONE]"], "cut at {cut}");
            let raw: Vec<u8> = evs.iter().flat_map(|e| e.raw.clone()).collect();
            assert_eq!(raw, stream.to_vec(), "raw bytes survive, cut at {cut}");
        }
    }

    #[test]
    fn crlf_framing_of_gemini() {
        let mut p = SseParser::new();
        let evs = p.push(b"data: {\"x\": 1}\r\n\r\ndata: {\"x\": 2}\r\n\r");
        assert_eq!(evs.len(), 1);
        let evs = p.push(b"\n");
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].data, "{\"x\": 2}");
        assert_eq!(evs[0].raw, b"data: {\"x\": 2}\r\n\r\n".to_vec());
    }

    #[test]
    fn named_events_of_anthropic() {
        let mut p = SseParser::new();
        let evs = p.push(b"event: ping\ndata: {\"type\": \"ping\"}\n\nevent: message_stop\ndata: {}\n\n");
        assert_eq!(evs[0].event.as_deref(), Some("ping"));
        assert_eq!(evs[1].event.as_deref(), Some("message_stop"));
    }

    #[test]
    fn split_utf8_survives() {
        let s = "data: {\"t\":\"héllo\"}\n\n".as_bytes();
        let mut p = SseParser::new();
        let mut evs = p.push(&s[..14]);
        evs.extend(p.push(&s[14..]));
        assert_eq!(evs[0].data, "{\"t\":\"héllo\"}");
    }

    #[test]
    fn feed_borrows_events_and_keeps_split_ones_for_the_next_chunk() {
        let stream = "event: a\ndata: {\"x\":1}\n\ndata: l1\ndata: l2\r\n\r\n: keep-alive\n\ndata: [DONE]\n\n".as_bytes();
        let whole: Vec<SseEvent> = SseParser::new().push(stream);
        for cut in 0..stream.len() {
            let mut p = SseParser::new();
            let mut got: Vec<SseEvent> = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                p.feed(part, |e| got.push(SseEvent { raw: e.raw.to_vec(), event: e.event.map(str::to_string), data: e.data.into_owned() }));
            }
            assert_eq!(got, whole, "cut at {cut}");
            assert_eq!(p.pending(), 0);
        }
        assert_eq!(whole[1].data, "l1\nl2");
        assert_eq!(whole[0].event.as_deref(), Some("a"));
    }

    #[test]
    fn unterminated_tail_is_returned_by_finish() {
        let mut p = SseParser::new();
        assert!(p.push(b"data: partial").is_empty());
        assert_eq!(p.finish().map(|e| e.data), Some("partial".into()));
    }
}
