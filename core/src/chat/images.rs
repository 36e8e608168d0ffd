//! Image inputs: where an image may come from, how big it may be, and its pixel size when the
//! gateway holds its bytes.
//!
//! The gateway **never fetches an image**: a URL is passed to the provider, which fetches it. It
//! accepts only `https://` URLs whose host is a DNS name (no IP literal in any spelling, no
//! `localhost`/`.local`/`.internal` names, no credentials, no port but 443), so a customer cannot
//! point a provider's fetcher (or a future gateway feature) at loopback, link-local or private
//! addresses by literal. A name that *resolves* to such an address is the fetching provider's to
//! refuse: checking it would need a DNS lookup the gateway does not make.
//!
//! `data:` URLs (and Anthropic's `base64` sources) are decoded here: their size is checked and
//! their pixel size read from the PNG, JPEG, GIF or WebP header (plain byte parsing, no crate),
//! so the hold can count such an image at its exact token cost instead of the model's maximum.
//! Bytes that are not the image type they claim to be are refused (400).

use crate::error::ApiError;

/// Most images one request may carry (Anthropic's limit for 200k-context models, the strictest).
pub const MAX_IMAGES: usize = 100;
/// Most decoded bytes of one inline image (Anthropic's per-image limit of 5 MB, the strictest of
/// the three; the request body limit `MAX_BODY_BYTES` usually binds first).
pub const MAX_IMAGE_BYTES: u64 = 5 * 1024 * 1024;
/// Most pixels on either side (Anthropic refuses images over 8000×8000).
pub const MAX_SIDE: u32 = 8000;
/// Longest image URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// The image types every provider accepts (OpenAI, Anthropic and Gemini all take these four).
pub const MEDIA_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// OpenAI's `detail` (the only provider-level option an image carries on the customer routes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Auto,
    Low,
    High,
    /// `original`: GPT-5.4 and later keep the input size.
    Original,
}

impl Detail {
    pub fn parse(s: &str) -> Option<Detail> {
        match s {
            "auto" => Some(Detail::Auto),
            "low" => Some(Detail::Low),
            "high" => Some(Detail::High),
            "original" => Some(Detail::Original),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// An `https://` URL the provider fetches.
    Url(String),
    /// Inline bytes, base64 (as received, validated).
    Base64 { media_type: String, data: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub source: ImageSource,
    pub detail: Option<Detail>,
    /// Width and height read from the bytes (inline images only).
    pub size: Option<(u32, u32)>,
}

impl Image {
    /// Bytes of base64 text this image adds to the request (not text tokens: excluded from the
    /// byte bound of the prompt, counted by its image-token bound instead).
    pub fn inline_len(&self) -> u64 {
        match &self.source {
            ImageSource::Base64 { data, .. } => data.len() as u64,
            ImageSource::Url(_) => 0,
        }
    }
}

/// An OpenAI-style `image_url.url`: a `data:` URL or an `https://` URL.
pub fn from_url(url: &str, detail: Option<Detail>, ctx: &str) -> Result<Image, ApiError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or_else(|| ApiError::invalid(format!("{ctx}: a data URL needs a `,` before its data")))?;
        let media_type = meta
            .strip_suffix(";base64")
            .ok_or_else(|| ApiError::invalid(format!("{ctx}: a data URL must be base64 (`data:image/png;base64,...`)")))?;
        return from_base64(media_type, data, detail, ctx);
    }
    check_https_url(url).map_err(|why| ApiError::invalid(format!("{ctx}: {why}")))?;
    Ok(Image { source: ImageSource::Url(url.to_string()), detail, size: None })
}

/// Inline base64 bytes of a declared type: size checked, header read.
pub fn from_base64(media_type: &str, data: &str, detail: Option<Detail>, ctx: &str) -> Result<Image, ApiError> {
    let media_type = media_type.to_ascii_lowercase();
    if !MEDIA_TYPES.contains(&media_type.as_str()) {
        return Err(ApiError::invalid(format!("{ctx}: image type `{media_type}` is not supported; send PNG, JPEG, GIF or WebP")));
    }
    let decoded_len = (data.len() as u64 / 4) * 3;
    if decoded_len > MAX_IMAGE_BYTES {
        return Err(ApiError::invalid(format!("{ctx}: the image is larger than {} MiB; send it smaller or as an https URL", MAX_IMAGE_BYTES >> 20)));
    }
    let bytes = decode_base64(data).ok_or_else(|| ApiError::invalid(format!("{ctx}: the image data is not valid base64")))?;
    let (w, h) = image_size(&bytes, &media_type)
        .ok_or_else(|| ApiError::invalid(format!("{ctx}: the data is not a readable {} image", media_type.trim_start_matches("image/").to_uppercase())))?;
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(ApiError::invalid(format!("{ctx}: the image is {w}×{h} pixels; each side must be between 1 and {MAX_SIDE}")));
    }
    Ok(Image { source: ImageSource::Base64 { media_type, data: data.to_string() }, detail, size: Some((w, h)) })
}

/// The image type an URL's path names by its extension (Gemini's `fileData` needs one).
pub fn media_type_from_url(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or("").to_ascii_lowercase();
    let ext = path.rsplit_once('.').map(|(_, e)| e)?;
    match ext {
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "gif" => Some("image/gif"),
        "webp" => Some("image/webp"),
        _ => None,
    }
}

/// Why an image URL is refused, if it is.
pub fn check_https_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_LEN {
        return Err(format!("image URLs may be at most {MAX_URL_LEN} characters"));
    }
    let Some(rest) = url.strip_prefix("https://") else {
        return Err("image URLs must be https:// (or data: URLs); the gateway does not pass on other schemes".into());
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the image URL contains whitespace".into());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("image URLs may not carry credentials".into());
    }
    if authority.starts_with('[') {
        return Err("image URLs must name a host, not an IP address".into());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if port.is_some_and(|p| p != "443") {
        return Err("image URLs may not name a port other than 443".into());
    }
    check_host(host)
}

/// A public DNS name: not an IP literal in any spelling, not a local-only name.
fn check_host(host: &str) -> Result<(), String> {
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        return Err("the image URL's host is not a valid DNS name".into());
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.iter().any(|l| l.is_empty() || l.len() > 63) {
        return Err("the image URL's host is not a valid DNS name".into());
    }
    // A real top-level domain is never numeric: a last label of digits (or 0x…) makes the name an
    // IPv4 literal in dotted, decimal, octal or hex form (`127.0.0.1`, `2130706433`, `0x7f.1`).
    let last = labels.last().copied().unwrap_or("");
    if last.chars().all(|c| c.is_ascii_digit()) || last.starts_with("0x") {
        return Err("image URLs must name a host, not an IP address".into());
    }
    const LOCAL: [&str; 6] = ["localhost", "local", "internal", "lan", "intranet", "home.arpa"];
    if LOCAL.iter().any(|l| host == *l || host.ends_with(&format!(".{l}"))) {
        return Err("the image URL's host is a local name; images must be publicly reachable".into());
    }
    if labels.len() < 2 {
        return Err("the image URL's host must be a fully qualified public name".into());
    }
    Ok(())
}

/// Standard base64 (padding optional); `None` on any other character.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // One leftover base64 character (6 bits) cannot end a valid encoding.
    (bits < 6).then_some(out)
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?])))
}

fn le16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?])))
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(*b.get(at)?) | u32::from(*b.get(at + 1)?) << 8 | u32::from(*b.get(at + 2)?) << 16)
}

/// Width and height from the header of a PNG, JPEG, GIF or WebP of the declared type.
pub fn image_size(b: &[u8], media_type: &str) -> Option<(u32, u32)> {
    match media_type {
        // PNG: signature, then the IHDR chunk: width and height, big-endian u32 at 16 and 20.
        "image/png" => {
            if b.get(..8)? != b"\x89PNG\r\n\x1a\n" || b.get(12..16)? != b"IHDR" {
                return None;
            }
            let w = u32::from_be_bytes(b.get(16..20)?.try_into().ok()?);
            let h = u32::from_be_bytes(b.get(20..24)?.try_into().ok()?);
            Some((w, h))
        }
        // GIF87a/89a: logical screen width and height, little-endian u16 at 6 and 8.
        "image/gif" => (b.get(..6)? == b"GIF87a" || b.get(..6)? == b"GIF89a").then_some((le16(b, 6)?, le16(b, 8)?)),
        "image/webp" => webp_size(b),
        "image/jpeg" => jpeg_size(b),
        _ => None,
    }
}

/// RIFF/WEBP with a VP8 (lossy), VP8L (lossless) or VP8X (extended) first chunk.
fn webp_size(b: &[u8]) -> Option<(u32, u32)> {
    if b.get(..4)? != b"RIFF" || b.get(8..12)? != b"WEBP" {
        return None;
    }
    match b.get(12..16)? {
        // Key frame: start code 9d 01 2a, then 14-bit width and height.
        b"VP8 " => (b.get(23..26)? == [0x9d, 0x01, 0x2a]).then_some((le16(b, 26)? & 0x3fff, le16(b, 28)? & 0x3fff)),
        // Signature 0x2f, then 14-bit width−1 and height−1 packed little-endian.
        b"VP8L" => {
            if *b.get(20)? != 0x2f {
                return None;
            }
            let bits = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
            Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
        }
        // Canvas width−1 and height−1, 24-bit little-endian at 24 and 27.
        b"VP8X" => Some((le24(b, 24)? + 1, le24(b, 27)? + 1)),
        _ => None,
    }
}

/// The frame header (SOF0–SOF15 except DHT, JPG and DAC) holds height then width.
fn jpeg_size(b: &[u8]) -> Option<(u32, u32)> {
    if b.get(..2)? != [0xff, 0xd8] {
        return None;
    }
    let mut i = 2;
    loop {
        // Markers may be padded with fill bytes (0xff).
        while *b.get(i)? == 0xff && *b.get(i + 1)? == 0xff {
            i += 1;
        }
        if *b.get(i)? != 0xff {
            return None;
        }
        let marker = *b.get(i + 1)?;
        match marker {
            // Standalone markers carry no length.
            0x01 | 0xd0..=0xd7 => {
                i += 2;
                continue;
            }
            0xd9 | 0xda => return None,
            0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) => return Some((be16(b, i + 7)?, be16(b, i + 5)?)),
            _ => {}
        }
        let len = be16(b, i + 2)? as usize;
        if len < 2 {
            return None;
        }
        i += 2 + len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Standard base64 of bytes (tests only).
    pub fn b64(bytes: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// The 1×1 PNG of the fixtures.
    const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        b.extend(w.to_be_bytes());
        b.extend(h.to_be_bytes());
        b.extend([8, 6, 0, 0, 0]);
        b
    }

    #[test]
    fn base64_round_trips_with_or_without_padding() {
        for s in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar", &png(3, 4)] {
            let e = b64(s);
            assert_eq!(decode_base64(&e).as_deref(), Some(s));
            assert_eq!(decode_base64(e.trim_end_matches('=')).as_deref(), Some(s));
        }
        assert!(decode_base64("Zm9v!").is_none());
        assert!(decode_base64("Z").is_none(), "a lone character encodes nothing");
        assert!(decode_base64("Zm9v\n").is_none());
    }

    #[test]
    fn sizes_are_read_from_every_supported_header() {
        let bytes = decode_base64(PNG_1X1).unwrap();
        assert_eq!(image_size(&bytes, "image/png"), Some((1, 1)));
        assert_eq!(image_size(&png(1024, 768), "image/png"), Some((1024, 768)));
        assert_eq!(image_size(&png(1024, 768), "image/jpeg"), None, "a PNG is not a JPEG");
        assert_eq!(image_size(b"GIF89a\x40\x01\xf0\x00", "image/gif"), Some((320, 240)));
        // JPEG: SOI, an APP0 segment, a DQT, then SOF0 with height 480 and width 640.
        let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10];
        jpeg.extend(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        jpeg.extend([0xff, 0xdb, 0x00, 0x04, 0x00, 0x00]);
        jpeg.extend([0xff, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x01, 0xe0, 0x02, 0x80, 0x03]);
        assert_eq!(image_size(&jpeg, "image/jpeg"), Some((640, 480)));
        // A DHT (0xc4) before the frame is skipped, not read as one.
        let mut with_dht = jpeg[..2].to_vec();
        with_dht.extend([0xff, 0xc4, 0x00, 0x03, 0x00]);
        with_dht.extend(&jpeg[2..]);
        assert_eq!(image_size(&with_dht, "image/jpeg"), Some((640, 480)));
        assert_eq!(image_size(&jpeg[..12], "image/jpeg"), None, "cut before the frame");
        // WebP: lossy, lossless and extended.
        let riff = |chunk: &[u8], body: &[u8]| [b"RIFF\0\0\0\0WEBP", chunk, b"\0\0\0\0", body].concat();
        let vp8 = riff(b"VP8 ", &[0, 0, 0, 0x9d, 0x01, 0x2a, 0x90, 0x01, 0x2c, 0x01]);
        assert_eq!(image_size(&vp8, "image/webp"), Some((400, 300)));
        let bits: u32 = (400 - 1) | ((300 - 1) << 14);
        let vp8l = riff(b"VP8L", &[[0x2f].as_slice(), &bits.to_le_bytes()].concat());
        assert_eq!(image_size(&vp8l, "image/webp"), Some((400, 300)));
        let vp8x = riff(b"VP8X", &[0, 0, 0, 0, 0x8f, 0x01, 0x00, 0x2b, 0x01, 0x00]);
        assert_eq!(image_size(&vp8x, "image/webp"), Some((400, 300)));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for n in 0..2000 {
            let bytes: Vec<u8> = (0..(n % 64))
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    [0xff, 0xd8, 0xc0, 0x00, b'R', b'I', b'F', b'W', b'V', b'P', b'8', b'L', (seed >> 8) as u8][(seed % 13) as usize]
                })
                .collect();
            for t in MEDIA_TYPES {
                let _ = image_size(&bytes, t);
            }
        }
    }

    #[test]
    fn data_urls_are_decoded_checked_and_sized() {
        let img = from_url(&format!("data:image/png;base64,{PNG_1X1}"), Some(Detail::Low), "m").unwrap();
        assert_eq!(img.size, Some((1, 1)));
        assert_eq!(img.inline_len(), PNG_1X1.len() as u64);
        for (url, needle) in [
            ("data:image/png,abc", "base64"),
            ("data:image/svg+xml;base64,PHN2Zz4=", "not supported"),
            ("data:image/png;base64,@@@", "not valid base64"),
            ("data:image/jpeg;base64,iVBORw0KGgo=", "not a readable JPEG"),
            ("data:image/png;base64", "`,`"),
        ] {
            let e = from_url(url, None, "messages[0]").unwrap_err();
            assert!(e.message.contains(needle), "{url}: {}", e.message);
            assert!(e.message.starts_with("messages[0]"));
        }
        let huge = format!("data:image/png;base64,{}", b64(&png(9000, 10)));
        assert!(from_url(&huge, None, "m").unwrap_err().message.contains("9000×10"));
        let big = "A".repeat((MAX_IMAGE_BYTES as usize / 3 + 2) * 4);
        assert!(from_url(&format!("data:image/png;base64,{big}"), None, "m").unwrap_err().message.contains("larger than"));
    }

    #[test]
    fn only_public_https_hosts_pass() {
        for ok in ["https://upload.wikimedia.org/a/b.jpg", "https://example.com:443/x.png?a=b#c", "https://cdn.example.co.uk./i.webp", "https://x-1.example.com"] {
            assert_eq!(check_https_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://example.com/a.png",
            "ftp://example.com/a.png",
            "file:///etc/passwd",
            "https://127.0.0.1/a.png",
            "https://10.0.0.8/a.png",
            "https://169.254.169.254/latest/meta-data",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://[::1]/a.png",
            "https://[fe80::1]/",
            "https://localhost/a.png",
            "https://api.localhost/a.png",
            "https://printer.local/a.png",
            "https://metadata.google.internal/computeMetadata/v1/",
            "https://intranet/a.png",
            "https://user:pw@example.com/a.png",
            "https://example.com:8080/a.png",
            "https://exa mple.com/a.png",
            "https://exa%6dple.com/",
            "https:///a.png",
        ] {
            assert!(check_https_url(bad).is_err(), "{bad} passed");
        }
        assert!(check_https_url(&format!("https://example.com/{}", "a".repeat(MAX_URL_LEN))).is_err());
        assert!(check_https_url("https://localhost/a.png").unwrap_err().contains("local name"));
        assert!(check_https_url("https://10.1.2.3/").unwrap_err().contains("IP address"));
    }
}
