use super::*;
use serde_json::Value;
use std::collections::HashSet;

#[test]
fn resolves_static_and_templated_paths() {
    let r = resolve("POST", "/v1/chat/completions").map(|r| r.endpoint);
    assert_eq!(r, Ok(Endpoint::OpenAiChatCompletions));
    let r = resolve("get", "/admin/keys/key_0123456789abcdef/ledger").ok();
    assert_eq!(r.as_ref().map(|r| r.endpoint), Some(Endpoint::AdminKeyLedger));
    assert_eq!(r.as_ref().map(|r| r.param("key_id")), Some("key_0123456789abcdef"));
}

#[test]
fn googles_custom_methods_match_after_a_colon_in_the_segment() {
    let r = resolve("POST", "/v1beta/models/gemini-3.8-flash:streamGenerateContent").unwrap();
    assert_eq!((r.endpoint, r.param("model")), (Endpoint::GeminiStreamGenerateContent, "gemini-3.8-flash"));
    let r = resolve("POST", "/v1beta/models/gemini-3.8-flash:generateContent").unwrap();
    assert_eq!((r.endpoint, r.param("model")), (Endpoint::GeminiGenerateContent, "gemini-3.8-flash"));
    for bad in ["/v1beta/models/:generateContent", "/v1beta/models/gemini-3.8-flash:embedContent", "/v1beta/models/gemini-3.8-flash", "/v1beta/models/x:generateContentx"] {
        assert_eq!(resolve("POST", bad).map_err(|e| e.status()), Err(404), "{bad}");
    }
    assert_eq!(resolve("GET", "/v1beta/models/g:generateContent").map_err(|e| e.status()), Err(405));
    assert_eq!(error_shape("/v1beta/models/g:generateContent"), ErrorShape::Gemini);
    let r = resolve("POST", "/v1/models/gemini-3.5-flash:generateContent").unwrap();
    assert_eq!((r.endpoint, r.param("model")), (Endpoint::GeminiGenerateContent, "gemini-3.5-flash"));
    assert_eq!(error_shape("/v1/models/g:streamGenerateContent"), ErrorShape::Gemini);
    assert_eq!(error_shape("/v1/models"), ErrorShape::OpenAi);
    assert_eq!(error_shape("/v1/messages/count_tokens"), ErrorShape::Anthropic);
    assert_eq!(error_shape("/v1/embeddings"), ErrorShape::OpenAi);
}

#[test]
fn unknown_paths_are_404_and_wrong_methods_405() {
    assert_eq!(resolve("GET", "/v1/nothing").map_err(|e| e.status()), Err(404));
    assert_eq!(resolve("GET", "/v1/chat").map_err(|e| e.status()), Err(405));
    assert_eq!(resolve("DELETE", "/admin/keys/key_0123456789abcdef").map_err(|e| e.status()), Err(405));
    // An empty `{key_id}` segment is not a key.
    assert_eq!(resolve("GET", "/admin/keys//ledger").map_err(|e| e.status()), Err(404));
}

#[test]
fn no_two_rows_share_a_method_and_template() {
    let mut seen = HashSet::new();
    for r in ROUTES {
        assert!(seen.insert((r.method, r.template)), "{} {} twice", r.method, r.template);
    }
}

/// The committed spec (public/openapi.json), read at run time so that a regenerated spec is
/// checked without rebuilding.
fn spec() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../public/openapi.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options", "trace"];

fn documented_operations(spec: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().into_iter().flatten() {
        for m in METHODS {
            if item.get(*m).is_some() {
                ops.push((m.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// A concrete path for a template: each `{name}` filled with the example the spec gives.
fn example_path(spec: &Value, method: &str, template: &str) -> String {
    let op = &spec["paths"][template][method.to_ascii_lowercase()];
    let params: Vec<&Value> = op["parameters"].as_array().into_iter().flatten().chain(spec["paths"][template]["parameters"].as_array().into_iter().flatten()).collect();
    template
        .split('/')
        .map(|seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => params
                .iter()
                .map(|p| if let Some(r) = p["$ref"].as_str() { &spec["components"]["parameters"][r.rsplit('/').next().unwrap_or("")] } else { *p })
                .find(|p| p["name"] == name && p["in"] == "path")
                .and_then(|p| p["example"].as_str().or(p["schema"]["example"].as_str()))
                .unwrap_or_else(|| panic!("{method} {template}: path parameter {name} has no example"))
                .to_string(),
            None => seg.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_route_is_documented() {
    let spec = spec();
    let ops: HashSet<(String, String)> = documented_operations(&spec).into_iter().collect();
    for r in ROUTES {
        assert!(ops.contains(&(r.method.to_string(), r.template.to_string())), "{} {} ({:?}) is not in public/openapi.json", r.method, r.template, r.endpoint);
    }
}

#[test]
fn every_documented_operation_resolves_to_its_route() {
    let spec = spec();
    let ops = documented_operations(&spec);
    assert!(!ops.is_empty());
    for (method, template) in ops {
        let entry = ROUTES.iter().find(|r| r.method == method && r.template == template);
        let entry = entry.unwrap_or_else(|| panic!("{method} {template} is documented but not in the route table"));
        let path = example_path(&spec, &method, &template);
        let resolved = resolve(&method, &path).unwrap_or_else(|e| panic!("{method} {path}: {}", e.message));
        assert_eq!(resolved.endpoint, entry.endpoint, "{method} {path}");
    }
}
