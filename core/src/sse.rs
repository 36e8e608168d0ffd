//! Incremental Server-Sent Events parser.
//!
//! Fed arbitrary byte chunks (a UTF-8 character or a line ending may be split across chunks),
//! it yields whole events with their raw bytes, so a stream can be passed through byte-exact and
//! only the events that matter (usage) are decoded. Accepts `\n`, `\r\n` (Gemini) and `\r`.

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
        let b = buf[i];
        if b == b'\r' || b == b'\n' {
            // length of this line terminator
            let term = if b == b'\r' {
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
        } else {
            line_start = false;
            i += 1;
        }
    }
    None
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
    fn unterminated_tail_is_returned_by_finish() {
        let mut p = SseParser::new();
        assert!(p.push(b"data: partial").is_empty());
        assert_eq!(p.finish().map(|e| e.data), Some("partial".into()));
    }
}
