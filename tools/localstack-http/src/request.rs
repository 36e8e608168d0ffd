//! What a tool's request parser produces, and the header rules both parsers apply.

/// Interim response sent when a request carries `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Raw (still percent-encoded) path, without the query string.
    pub path: String,
    /// Raw query string (without '?'), possibly empty.
    pub query: String,
    /// Header (name, value) pairs in arrival order, values trimmed. Whether names are
    /// lower-cased is up to the parser; look them up with [`Request::header`].
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the connection may serve another request after this one (the parser's rule).
    pub keep_alive: bool,
}

impl Request {
    /// A request from its parsed head: `target` (origin form) is split into path and query; the
    /// body starts empty and `keep_alive` true, for the parser to fill in.
    pub fn from_head(method: String, target: &str, headers: Vec<(String, String)>) -> Request {
        let (path, query) = split_target(target);
        Request {
            method,
            path,
            query,
            headers,
            body: Vec::new(),
            keep_alive: true,
        }
    }

    /// First value of a header, name compared ASCII case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `Expect: 100-continue` (value case-insensitive): the client waits for [`CONTINUE`].
    pub fn expects_continue(&self) -> bool {
        self.header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }

    /// `Transfer-Encoding` names `chunked`: the body is read chunk by chunk, not by Content-Length.
    pub fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

/// Split an origin-form request target into (path, query without the '?').
fn split_target(target: &str) -> (String, String) {
    match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
            keep_alive: true,
        }
    }

    #[test]
    fn header_rules() {
        let r = req(&[
            ("Expect", "100-Continue"),
            ("transfer-encoding", "gzip, Chunked"),
            ("X-A", "1"),
            ("x-a", "2"),
        ]);
        assert_eq!(r.header("x-a"), Some("1"));
        assert_eq!(r.header("X-A"), Some("1"));
        assert_eq!(r.header("missing"), None);
        assert!(r.expects_continue());
        assert!(r.is_chunked());
        let plain = req(&[("expect", "200-ok"), ("transfer-encoding", "identity")]);
        assert!(!plain.expects_continue());
        assert!(!plain.is_chunked());
    }

    #[test]
    fn splits_targets() {
        assert_eq!(
            split_target("/a/b?x=1&y"),
            ("/a/b".to_string(), "x=1&y".to_string())
        );
        assert_eq!(split_target("/a"), ("/a".to_string(), String::new()));
        assert_eq!(split_target("/?"), ("/".to_string(), String::new()));
        let r = Request::from_head("GET".into(), "/p?q=1?2", Vec::new());
        assert_eq!((r.path.as_str(), r.query.as_str()), ("/p", "q=1?2"));
        assert!(r.keep_alive && r.body.is_empty());
    }
}
